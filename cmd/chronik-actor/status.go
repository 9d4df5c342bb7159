package main

// chronik-actor cluster status: every node's /v1/cluster, put together.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/chronik-actor/chronik-actor/cluster"
)

const clusterUsage = `usage: chronik-actor cluster status [--config cluster.toml | --admin HOST:PORT[,HOST:PORT...]] [--json] [--timeout D]
`

func clusterCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "status" {
		fmt.Fprint(stderr, clusterUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("chronik-actor cluster status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		configPath = fs.String("config", "", "cluster.toml naming the nodes' admin addresses (default $"+EnvConfig+")")
		admin      = fs.String("admin", "", "admin HTTP addresses HOST:PORT[,HOST:PORT...] to ask, instead of --config")
		asJSON     = fs.Bool("json", false, "print JSON instead of text")
		timeout    = fs.Duration("timeout", 2*time.Second, "how long to wait for each node's answer")
	)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	targets, err := statusTargets(*configPath, *admin, os.Getenv)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err == nil && *timeout <= 0 {
		err = fmt.Errorf("--timeout must be positive")
	}
	if err != nil {
		fmt.Fprintf(stderr, "chronik-actor cluster status: %v\n", err)
		return exitUsage
	}
	rep := collectStatus(context.Background(), targets, *timeout)
	if rep.answered == 0 {
		fmt.Fprintf(stderr, "chronik-actor cluster status: no node answered:\n")
		for _, n := range rep.Nodes {
			why := strings.TrimPrefix(n.Note, "admin: ")
			switch {
			case n.ID > 0 && n.Admin != "":
				fmt.Fprintf(stderr, "  node %d at %s: %s\n", n.ID, n.Admin, why)
			case n.Admin != "":
				fmt.Fprintf(stderr, "  %s: %s\n", n.Admin, why)
			}
		}
		return exitFailure
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "chronik-actor cluster status: %v\n", err)
			return exitFailure
		}
		return exitOK
	}
	if err := printStatus(stdout, rep); err != nil {
		fmt.Fprintf(stderr, "chronik-actor cluster status: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// target is an admin endpoint to ask; id is the node it belongs to, 0
// when not known before it answers (--admin).
type target struct {
	id   int32
	addr string
}

// statusTargets are the endpoints named by --admin, or else by the
// [[nodes]] of --config (or $CHRONIK_CONFIG). A node without an admin
// address is kept with an empty addr: it is judged by its peers' views.
func statusTargets(configPath, admin string, getenv func(string) string) ([]target, error) {
	if admin != "" {
		if configPath != "" {
			return nil, errors.New("give --config or --admin, not both")
		}
		var out []target
		for _, a := range strings.Split(admin, ",") {
			a = strings.TrimSpace(a)
			if err := cluster.CheckAddr(a); err != nil {
				return nil, fmt.Errorf("--admin %q: %w", a, err)
			}
			out = append(out, target{addr: a})
		}
		return out, nil
	}
	if configPath == "" {
		configPath = getenv(EnvConfig)
	}
	if configPath == "" {
		return nil, errors.New("give --config cluster.toml or --admin HOST:PORT[,...]")
	}
	cfg := cluster.Default()
	if err := cluster.LoadFile(configPath, &cfg); err != nil {
		return nil, err
	}
	if len(cfg.Nodes) == 0 {
		if cfg.AdminAddr == "" {
			return nil, fmt.Errorf("%s names no [[nodes]] and no admin address", configPath)
		}
		return []target{{id: cfg.NodeID, addr: cfg.AdminAddr}}, nil
	}
	var out []target
	named := false
	for _, n := range cfg.Nodes {
		out = append(out, target{id: n.ID, addr: n.Admin})
		named = named || n.Admin != ""
	}
	if !named {
		return nil, fmt.Errorf("%s: no [[nodes]] entry has an admin address", configPath)
	}
	return out, nil
}

// statusReport is what `cluster status` prints, and its --json.
type statusReport struct {
	// ControllerID is the node leading the controller, -1 when no
	// answering node knows one that is up.
	ControllerID int32             `json:"controller_id"`
	Nodes        []statusNode      `json:"nodes"`
	Partitions   []statusPartition `json:"partitions"`

	answered int // nodes whose admin endpoint answered
}

type statusNode struct {
	ID    int32  `json:"id"`
	Kafka string `json:"kafka,omitempty"`
	Raft  string `json:"raft,omitempty"`
	Admin string `json:"admin,omitempty"`
	Rack  string `json:"rack,omitempty"`
	// Up: its admin endpoint answered and no majority of the answering
	// nodes sees it down (for a node without an admin address: a majority
	// sees it up).
	Up         bool   `json:"up"`
	Answered   bool   `json:"answered"`
	Controller bool   `json:"controller"`
	Note       string `json:"note,omitempty"` // why it is down, or who sees it down

	asked bool // its admin endpoint was asked
}

type statusPartition struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Group     uint64  `json:"group"`
	Leader    int32   `json:"leader"` // -1: none that is up
	Term      int32   `json:"term"`   // the leader's raft term (leader epoch); -1 with no leader
	Replicas  []int32 `json:"replicas"`
	// Lag is each replica's progress from the leader's own answer; absent
	// when the leader did not answer.
	Lag []cluster.ReplicaProgress `json:"lag,omitempty"`
}

// answer is one endpoint's reply.
type answer struct {
	target
	view *cluster.View
	err  error
}

// collectStatus asks every target, then any node the answers name with
// an admin address not asked yet, and puts the views together.
func collectStatus(ctx context.Context, targets []target, timeout time.Duration) statusReport {
	client := &http.Client{Timeout: timeout}
	asked := map[string]bool{}
	var answers []answer
	next := targets
	for len(next) > 0 {
		round := make([]answer, len(next))
		var wg sync.WaitGroup
		for i, t := range next {
			round[i].target = t
			if t.addr == "" {
				continue
			}
			asked[t.addr] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				round[i].view, round[i].err = fetchView(ctx, client, t.addr)
			}()
		}
		wg.Wait()
		answers = append(answers, round...)
		next = nil
		for _, a := range round {
			if a.view == nil {
				continue
			}
			for _, n := range a.view.Nodes {
				if n.Admin != "" && !asked[n.Admin] && !known(answers, n.ID) {
					asked[n.Admin] = true
					next = append(next, target{id: n.ID, addr: n.Admin})
				}
			}
		}
	}
	return buildReport(answers)
}

// known reports whether id answered already, or was listed with an
// address of its own (the config's address wins over a peer's).
func known(answers []answer, id int32) bool {
	for _, a := range answers {
		if (a.view != nil && a.view.NodeID == id) || (a.id == id && a.addr != "") {
			return true
		}
	}
	return false
}

func fetchView(ctx context.Context, client *http.Client, addr string) (*cluster.View, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/cluster", nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap() // "connection refused", not the whole URL again
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	var v cluster.View
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&v); err != nil {
		return nil, fmt.Errorf("decoding /v1/cluster: %w", err)
	}
	return &v, nil
}

// buildReport puts the answers together. It is pure, for tests: the
// nodes' state by the rules on statusNode, the controller and each
// partition's leader from the highest term claimed by a node that is up
// (a leader's claim about itself first), and the lag from that leader's
// answer.
func buildReport(answers []answer) statusReport {
	var views []*cluster.View
	byID := map[int32]*statusNode{}
	node := func(id int32) *statusNode {
		if n := byID[id]; n != nil {
			return n
		}
		n := &statusNode{ID: id}
		byID[id] = n
		return n
	}
	fill := func(n *statusNode, nv cluster.NodeView, force bool) {
		set := func(dst *string, v string) {
			if v != "" && (force || *dst == "") {
				*dst = v
			}
		}
		set(&n.Kafka, nv.Kafka)
		set(&n.Raft, nv.Raft)
		set(&n.Admin, nv.Admin)
		set(&n.Rack, nv.Rack)
	}
	for _, a := range answers {
		if a.view != nil {
			views = append(views, a.view)
		}
	}
	for _, v := range views {
		for _, nv := range v.Nodes {
			// A node's entry about itself wins over its peers'.
			fill(node(nv.ID), nv, nv.ID == v.NodeID)
		}
	}
	for _, a := range answers {
		var n *statusNode
		switch {
		case a.view != nil:
			n = node(a.view.NodeID)
			n.Answered = true
		case a.id != 0:
			n = node(a.id)
		case a.addr != "":
			// An --admin address that did not answer: whose is it?
			for _, c := range byID {
				if c.Admin == a.addr && !c.Answered {
					n = c
				}
			}
			if n == nil {
				n = node(-int32(len(byID)) - 1) // a node known by its address only
			}
		}
		if n == nil || a.addr == "" {
			continue
		}
		n.Admin = a.addr // the address asked, over what a view says
		n.asked = true
		if a.err != nil {
			n.Note = "admin: " + a.err.Error()
		}
	}

	rep := statusReport{ControllerID: -1, answered: len(views)}
	for _, n := range byID {
		var up, down []int32
		for _, v := range views {
			for _, nv := range v.Nodes {
				if nv.ID != n.ID {
					continue
				}
				if nv.Up {
					up = append(up, v.NodeID)
				} else {
					down = append(down, v.NodeID)
				}
			}
		}
		slices.Sort(down)
		switch {
		case n.Answered:
			n.Up = 2*len(down) <= len(views)
			if len(down) > 0 {
				n.Note = "seen down by " + joinIDs(down)
			}
		case !n.asked:
			// No admin address to ask: its peers' word decides.
			n.Up = 2*len(up) > len(views)
			n.Note = "no admin address"
			if len(down) > 0 {
				n.Note += "; seen down by " + joinIDs(down)
			}
		}
		rep.Nodes = append(rep.Nodes, *n)
	}
	sort.Slice(rep.Nodes, func(i, j int) bool {
		a, b := rep.Nodes[i].ID, rep.Nodes[j].ID
		if (a < 0) != (b < 0) {
			return a > 0
		}
		if a < 0 {
			return a > b // nodes known by address only, in the order given
		}
		return a < b
	})
	isUp := map[int32]bool{}
	for _, n := range rep.Nodes {
		isUp[n.ID] = n.Up
	}

	// The controller: the claim with the highest term, by a node that is
	// up, a node's claim about itself first.
	best := claim{leader: -1, term: -1}
	for _, v := range views {
		c := v.Controller
		if c.Leader >= 0 && isUp[c.Leader] {
			best = best.better(claim{leader: c.Leader, term: c.LeaderEpoch, self: c.Leader == v.NodeID && c.Progress != nil})
		}
	}
	rep.ControllerID = best.leader
	for i := range rep.Nodes {
		rep.Nodes[i].Controller = rep.Nodes[i].ID == rep.ControllerID && rep.ControllerID >= 0
	}

	type key struct {
		topic     string
		partition int32
	}
	parts := map[key]*statusPartition{}
	claims := map[key]claim{}
	for _, v := range views {
		for _, t := range v.Topics {
			for _, p := range t.Partitions {
				k := key{t.Name, p.Partition}
				sp := parts[k]
				if sp == nil {
					sp = &statusPartition{Topic: t.Name, Partition: p.Partition, Group: p.Group, Replicas: p.Replicas, Leader: -1, Term: -1}
					parts[k] = sp
					claims[k] = claim{leader: -1, term: -1}
				}
				if p.Leader < 0 || !isUp[p.Leader] {
					continue
				}
				c := claim{leader: p.Leader, term: p.LeaderEpoch}
				if p.Leader == v.NodeID && p.Progress != nil {
					c.self, c.progress = true, p.Progress
					c.term = int32(p.Progress.Term)
					c.replicas = p.Replicas
				}
				claims[k] = claims[k].better(c)
			}
		}
	}
	for k, sp := range parts {
		c := claims[k]
		sp.Leader, sp.Term = c.leader, c.term
		if c.progress != nil {
			sp.Lag = c.progress.Replicas
			sp.Replicas = c.replicas // the leader's metadata
		}
		rep.Partitions = append(rep.Partitions, *sp)
	}
	sort.Slice(rep.Partitions, func(i, j int) bool {
		a, b := rep.Partitions[i], rep.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	return rep
}

// claim is one node's word on who leads a group.
type claim struct {
	leader   int32
	term     int32
	self     bool // the leader's own word, with its progress
	progress *cluster.Progress
	replicas []int32
}

func (c claim) better(o claim) claim {
	if o.term > c.term || (o.term == c.term && o.self && !c.self) {
		return o
	}
	return c
}

// printStatus writes the report as two aligned tables.
func printStatus(w io.Writer, rep statusReport) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATUS\tCONTROLLER\tKAFKA\tRAFT\tADMIN\tRACK\tNOTE")
	for _, n := range rep.Nodes {
		status := "DOWN"
		if n.Up {
			status = "UP"
		}
		ctl := "-"
		if n.Controller {
			ctl = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", nodeName(n.ID), status, ctl,
			dash(n.Kafka), dash(n.Raft), dash(n.Admin), dash(n.Rack), n.Note)
	}
	if rep.ControllerID < 0 {
		fmt.Fprintln(tw, "(no controller leader is known to an answering node)")
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLEADER\tTERM\tREPLICAS\tIN-SYNC\tLAG")
	for _, p := range rep.Partitions {
		leader, term := "none", "-"
		if p.Leader >= 0 {
			leader, term = strconv.Itoa(int(p.Leader)), strconv.Itoa(int(p.Term))
		}
		inSync, lag := "-", "-"
		if p.Lag != nil {
			var ids []int32
			var lags []string
			for _, r := range p.Lag {
				if r.InSync {
					ids = append(ids, r.ID)
				}
				lags = append(lags, fmt.Sprintf("%d:%d", r.ID, r.Lag))
			}
			inSync, lag = dash(joinIDs(ids)), strings.Join(lags, " ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.Topic, p.Partition, leader, term, dash(joinIDs(p.Replicas)), inSync, lag)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// An empty last cell leaves the padding of the one before it.
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// nodeName is the id as printed; an address that never answered has no
// id, and shows as "?".
func nodeName(id int32) string {
	if id <= 0 {
		return "?"
	}
	return strconv.Itoa(int(id))
}

func joinIDs(ids []int32) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(int(id))
	}
	return strings.Join(s, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
