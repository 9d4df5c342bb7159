package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// FileError is a problem in cluster.toml. It names the line and the key so
// that an operator can go straight to it: `cluster.toml:7: key
// nodes[0].kafka: "localhost" is not HOST:PORT`.
type FileError struct {
	File string
	Line int    // from 1; 0 when the problem has no single line
	Key  string // TOML path such as nodes[0].kafka; empty for syntax errors
	Err  error
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": key %s", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

// fileDoc is cluster.toml as written. Pointers tell "absent" from "zero", so
// that a key left out keeps the value the caller passed in. Integers are
// int64 so that an out-of-range value is reported instead of wrapping.
type fileDoc struct {
	NodeID  *int64      `toml:"node_id"`
	Cluster fileCluster `toml:"cluster"`
	Nodes   []fileNode  `toml:"nodes"`
	Testing fileTesting `toml:"testing"`
}

// fileTesting is [testing]: switches for tests that run nodes as
// processes, never for production.
type fileTesting struct {
	// Faults serves /v1/faults on the admin endpoint (Config.TestFaults).
	Faults *bool `toml:"faults"`
}

type fileCluster struct {
	ReplicationFactor *int64  `toml:"replication_factor"`
	Partitions        *int64  `toml:"partitions"`
	AutoCreateTopics  *bool   `toml:"auto_create_topics"`
	SegmentBytes      *int64  `toml:"segment_bytes"`
	FlushInterval     *string `toml:"flush_interval"`
	// Kafka's offsets.topic.num.partitions and offsets.retention.minutes.
	OffsetsPartitions       *int64 `toml:"offsets_partitions"`
	OffsetsRetentionMinutes *int64 `toml:"offsets_retention_minutes"`
	// Kafka's transaction.state.log.num.partitions and
	// transaction.max.timeout.ms.
	TransactionPartitions *int64  `toml:"transaction_partitions"`
	TransactionMaxTimeout *string `toml:"transaction_max_timeout"`
	// The free-space floor for produce (Config.MinFreeDiskBytes).
	MinFreeBytes *int64 `toml:"storage_min_free_bytes"`
	// Request limits (Config.RequestMemoryBytes, ConnectionsMaxIdle,
	// RequestFrameTimeout).
	RequestMemoryBytes  *int64  `toml:"request_memory_bytes"`
	ConnectionsMaxIdle  *string `toml:"connections_max_idle"`
	RequestFrameTimeout *string `toml:"request_frame_timeout"`
}

type fileNode struct {
	ID      *int64  `toml:"id"`
	Kafka   *string `toml:"kafka"`
	Raft    *string `toml:"raft"`
	Admin   *string `toml:"admin"`
	Rack    *string `toml:"rack"`
	DataDir *string `toml:"data_dir"`
}

// schema lists the keys of each table with the type they want; it words the
// "unknown key" and "wrong type" errors. It must match the tags above.
var schema = map[string]map[string]string{
	"":        {"node_id": "an integer", "cluster": "a table", "nodes": "an array of tables", "testing": "a table"},
	"testing": {"faults": "a boolean"},
	"cluster": {
		"replication_factor": "an integer", "partitions": "an integer",
		"auto_create_topics": "a boolean", "segment_bytes": "an integer",
		"flush_interval":     `a duration string such as "1s"`,
		"offsets_partitions": "an integer", "offsets_retention_minutes": "an integer",
		"transaction_partitions":  "an integer",
		"transaction_max_timeout": `a duration string such as "15m"`,
		"storage_min_free_bytes":  "an integer", "request_memory_bytes": "an integer",
		"connections_max_idle":  `a duration string such as "10m"`,
		"request_frame_timeout": `a duration string such as "30s"`,
	},
	"nodes": {
		"id": "an integer", "kafka": "a string", "raft": "a string",
		"admin": "a string", "rack": "a string", "data_dir": "a string",
	},
}

// LoadFile reads cluster.toml at path into cfg. Keys absent from the file
// leave cfg as it was; on error cfg is unchanged. Once loaded, the entry of
// [[nodes]] whose id is cfg.NodeID supplies KafkaAddr, RaftAddr, AdminAddr,
// Rack and DataDir (relative data_dir values are relative to the working
// directory, as flags are).
//
// Only settings that come from the file are checked here, with their line;
// the node id and addresses may still change through the environment and
// flags, so call Validate on the final Config.
func LoadFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err // *PathError already names the file
	}
	return loadTOML(path, data, cfg)
}

func loadTOML(name string, data []byte, cfg *Config) error {
	idx := indexKeys(data)
	var doc fileDoc
	if err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(&doc); err != nil {
		return decodeError(name, idx, err)
	}
	fail := func(key string, err error) error {
		return &FileError{File: name, Line: idx.lineOf(key), Key: key, Err: err}
	}
	// go-toml reads a single [nodes] table as a one-entry array; accepting
	// that would break the day a second node is added.
	if line, ok := idx.tables["nodes"]; ok {
		return &FileError{File: name, Line: line, Key: "nodes", Err: errors.New("is a [table]; write each node as [[nodes]]")}
	}

	next := *cfg
	if doc.NodeID != nil {
		v, err := toInt32(*doc.NodeID)
		if err != nil {
			return fail("node_id", err)
		}
		next.NodeID = v
	}
	c := doc.Cluster
	if c.ReplicationFactor != nil {
		v := *c.ReplicationFactor
		if v > math.MaxInt16 || v < math.MinInt16 {
			return fail("cluster.replication_factor", fmt.Errorf("%d is out of range", v))
		}
		next.DefaultReplicationFactor = int16(v)
	}
	if c.Partitions != nil {
		v, err := toInt32(*c.Partitions)
		if err != nil {
			return fail("cluster.partitions", err)
		}
		next.DefaultPartitions = v
	}
	if c.AutoCreateTopics != nil {
		next.AutoCreateTopics = *c.AutoCreateTopics
	}
	if f := doc.Testing.Faults; f != nil {
		next.TestFaults = *f
	}
	if c.SegmentBytes != nil {
		next.SegmentBytes = *c.SegmentBytes
	}
	if c.MinFreeBytes != nil {
		next.MinFreeDiskBytes = *c.MinFreeBytes
	}
	if v := c.RequestMemoryBytes; v != nil {
		if *v < 1 {
			return fail("cluster.request_memory_bytes", fmt.Errorf("%d is less than 1", *v))
		}
		next.RequestMemoryBytes = *v
	}
	for _, d := range []struct {
		key string
		v   *string
		to  *time.Duration
	}{
		{"cluster.connections_max_idle", c.ConnectionsMaxIdle, &next.ConnectionsMaxIdle},
		{"cluster.request_frame_timeout", c.RequestFrameTimeout, &next.RequestFrameTimeout},
	} {
		if d.v == nil {
			continue
		}
		v, err := time.ParseDuration(*d.v)
		if err != nil || v < 0 {
			return fail(d.key, fmt.Errorf("%q is not a duration of 0 or more", *d.v))
		}
		*d.to = v
	}
	if c.FlushInterval != nil {
		d, err := time.ParseDuration(*c.FlushInterval)
		if err != nil {
			return fail("cluster.flush_interval", fmt.Errorf("%q is not a duration such as \"1s\"", *c.FlushInterval))
		}
		next.FlushInterval = d
	}
	if c.OffsetsPartitions != nil {
		v, err := toInt32(*c.OffsetsPartitions)
		if err != nil {
			return fail("cluster.offsets_partitions", err)
		}
		next.OffsetsPartitions = v
	}
	if c.OffsetsRetentionMinutes != nil {
		next.OffsetsRetention = time.Duration(*c.OffsetsRetentionMinutes) * time.Minute
		if *c.OffsetsRetentionMinutes < 1 || *c.OffsetsRetentionMinutes > math.MaxInt64/int64(time.Minute) {
			return fail("cluster.offsets_retention_minutes", fmt.Errorf("%d is not a number of minutes >= 1", *c.OffsetsRetentionMinutes))
		}
	}
	if c.TransactionPartitions != nil {
		v, err := toInt32(*c.TransactionPartitions)
		if err != nil {
			return fail("cluster.transaction_partitions", err)
		}
		next.TransactionPartitions = v
	}
	if c.TransactionMaxTimeout != nil {
		d, err := time.ParseDuration(*c.TransactionMaxTimeout)
		if err != nil {
			return fail("cluster.transaction_max_timeout", fmt.Errorf("%q is not a duration such as \"15m\"", *c.TransactionMaxTimeout))
		}
		next.TransactionMaxTimeout = d
	}
	if doc.Nodes != nil {
		next.Nodes = make([]Node, len(doc.Nodes))
		for i, fn := range doc.Nodes {
			n := &next.Nodes[i]
			if fn.ID == nil {
				return fail(fmt.Sprintf("nodes[%d].id", i), errors.New("is missing"))
			}
			id, err := toInt32(*fn.ID)
			if err != nil {
				return fail(fmt.Sprintf("nodes[%d].id", i), err)
			}
			n.ID = id
			n.Kafka = deref(fn.Kafka)
			n.Raft = deref(fn.Raft)
			n.Admin = deref(fn.Admin)
			n.Rack = deref(fn.Rack)
			n.DataDir = deref(fn.DataDir)
		}
	}
	next.ApplyNode()

	// Report the first problem, in file order, that the file is to blame
	// for. Settings the file does not mention (a default node id, say) are
	// left to Validate after the environment and flags had their say.
	var first *FileError
	for _, p := range next.problems() {
		line := idx.lineOf(p.key)
		if line == 0 {
			continue
		}
		if first == nil || line < first.Line {
			first = &FileError{File: name, Line: line, Key: p.key, Err: p.err}
		}
	}
	if first != nil {
		return first
	}
	*cfg = next
	return nil
}

func toInt32(v int64) (int32, error) {
	if v > math.MaxInt32 || v < math.MinInt32 {
		return 0, fmt.Errorf("%d is out of range", v)
	}
	return int32(v), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// gotType pulls the TOML type out of go-toml's type-mismatch message, whose
// wording names Go struct fields an operator has never seen.
var gotType = regexp.MustCompile(`cannot decode TOML (\w+)`)

// decodeError turns a go-toml error into a FileError in this package's
// words, with the indexed path of the key (nodes[1].id, not nodes.id).
func decodeError(name string, idx keyIndex, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) && len(strict.Errors) > 0 {
		de := &strict.Errors[0]
		line, _ := de.Position()
		key := idx.resolve(line, de.Key())
		return &FileError{File: name, Line: line, Key: key, Err: unknownKey(key)}
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return &FileError{File: name, Err: err}
	}
	line, _ := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	if len(de.Key()) == 0 {
		return &FileError{File: name, Line: line, Err: errors.New(msg)}
	}
	key := idx.resolve(line, de.Key())
	table, last := splitKey(key)
	want := schema[table][last]
	switch m := gotType.FindStringSubmatch(msg); {
	case strings.Contains(msg, "cannot store an array table") && want != "":
		msg = fmt.Sprintf("is an array of tables ([[%s]]), not %s", strings.Join(de.Key(), "."), want)
	case m != nil:
		if want == "" {
			want = "another type"
		}
		shown := m[1]
		if v := idx.value[key]; v != "" {
			shown = fmt.Sprintf("%s (a TOML %s)", v, m[1])
		} else {
			shown = "a TOML " + shown
		}
		msg = fmt.Sprintf("%s is not %s", shown, want)
	case strings.Contains(msg, "already defined"):
		msg = "is defined twice"
	}
	return &FileError{File: name, Line: line, Key: key, Err: errors.New(msg)}
}

// splitKey splits an indexed key path ("nodes[1].kafka") into the schema
// table it lives in ("nodes"; "" for the top level) and its last part.
func splitKey(key string) (table, last string) {
	plain := arrayIndex.ReplaceAllString(key, "")
	i := strings.LastIndex(plain, ".")
	if i < 0 {
		return "", plain
	}
	return plain[:i], plain[i+1:]
}

// unknownKey words the error for key, listing the keys known in the
// closest enclosing table the schema has (for cluster.sub.x, [cluster]'s).
func unknownKey(key string) error {
	table, last := splitKey(key)
	known, ok := schema[table]
	for !ok && table != "" {
		table, last = splitKey(table)
		known, ok = schema[table]
	}
	if !ok {
		return errors.New("unknown key")
	}
	names := make([]string, 0, len(known))
	for n := range known {
		names = append(names, n)
	}
	sort.Strings(names)
	msg := fmt.Sprintf("unknown key (known here: %s)", strings.Join(names, ", "))
	// A top-level key written below a [table] header belongs to that table
	// in TOML; that is the usual way node_id ends up "unknown".
	if _, top := schema[""][last]; top && table != "" {
		msg += "; top-level keys go before the first [table]"
	}
	return errors.New(msg)
}

// keyIndex records where each key of the file is, by its indexed path
// ("cluster.partitions", "nodes[1]", "nodes[1].kafka"). go-toml's own error
// positions cover decoding; this covers the checks made after it.
type keyIndex struct {
	line   map[string]int
	atLine map[int][]string
	value  map[string]string // raw text of scalar values, for messages
	tables map[string]int    // [table] headers (not [[array]]) and their line
}

// lineOf is the line of key, or of its closest enclosing table that the
// file has (a missing nodes[0].kafka is reported at its [[nodes]] header),
// or 0 if the file mentions neither.
func (x keyIndex) lineOf(key string) int {
	for {
		if l, ok := x.line[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i <= 0 {
			return 0
		}
		key = key[:i]
	}
}

// resolve picks the indexed path on line for go-toml's unindexed key.
func (x keyIndex) resolve(line int, k toml.Key) string {
	want := strings.Join(k, ".")
	for _, p := range x.atLine[line] {
		plain := arrayIndex.ReplaceAllString(p, "")
		if plain == want || strings.HasSuffix(plain, "."+want) {
			return p
		}
	}
	return want
}

var arrayIndex = regexp.MustCompile(`\[\d+\]`)

func indexKeys(data []byte) keyIndex {
	x := keyIndex{
		line:   map[string]int{},
		atLine: map[int][]string{},
		value:  map[string]string{},
		tables: map[string]int{},
	}
	var p unstable.Parser
	p.Reset(data)
	tables := map[string]int{} // [[array]] path -> entries so far
	prefix := ""
	// A syntax error ends the walk; go-toml reports it with its position.
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			path, line := x.keyPath(&p, "", e.Key(), tables)
			if e.Kind == unstable.ArrayTable {
				n := tables[path]
				tables[path] = n + 1
				path = fmt.Sprintf("%s[%d]", path, n)
			} else if _, seen := x.tables[path]; !seen {
				x.tables[path] = line
			}
			x.add(path, line)
			prefix = path
		case unstable.KeyValue:
			x.keyValue(&p, prefix, e, tables)
		}
	}
	return x
}

func (x keyIndex) add(path string, line int) {
	if _, ok := x.line[path]; !ok {
		x.line[path] = line
	}
	x.atLine[line] = append(x.atLine[line], path)
}

// keyPath joins a (possibly dotted) key onto prefix, indexing parts that
// name an array of tables by its latest entry, as TOML does.
func (x keyIndex) keyPath(p *unstable.Parser, prefix string, it unstable.Iterator, tables map[string]int) (string, int) {
	path, line := prefix, 0
	for it.Next() {
		k := it.Node()
		if line == 0 {
			line = p.Shape(k.Raw).Start.Line
		}
		if n := tables[path]; n > 0 {
			path = fmt.Sprintf("%s[%d]", path, n-1)
		}
		if path != "" {
			path += "."
		}
		path += string(k.Data)
	}
	return path, line
}

func (x keyIndex) keyValue(p *unstable.Parser, prefix string, kv *unstable.Node, tables map[string]int) {
	path, line := x.keyPath(p, prefix, kv.Key(), tables)
	x.add(path, line)
	v := kv.Value()
	switch v.Kind {
	case unstable.InlineTable:
		x.inlineTable(p, path, v, tables)
	case unstable.Array:
		// nodes = [{...}, {...}] is the inline spelling of [[nodes]].
		i := 0
		for it := v.Children(); it.Next(); {
			el := it.Node()
			if el.Kind != unstable.InlineTable {
				continue
			}
			at := fmt.Sprintf("%s[%d]", path, i)
			i++
			x.add(at, p.Shape(el.Raw).Start.Line)
			x.inlineTable(p, at, el, tables)
		}
	case unstable.String, unstable.Integer, unstable.Float, unstable.Bool:
		x.value[path] = string(p.Raw(v.Raw))
	}
}

func (x keyIndex) inlineTable(p *unstable.Parser, path string, t *unstable.Node, tables map[string]int) {
	for it := t.Children(); it.Next(); {
		if kv := it.Node(); kv.Kind == unstable.KeyValue {
			x.keyValue(p, path, kv, tables)
		}
	}
}
