package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchConfig is one produce workload and the targets it runs against.
// Every target of a run gets exactly the same workload (only the topic's
// replication factor follows the target), so that the side-by-side
// numbers compare brokers only.
type benchConfig struct {
	brokers []string // empty: an embedded broker
	nodes   int      // of the embedded broker: 1 is a single node, more a cluster
	// replicationFactor of the bench topic on --brokers and on the
	// embedded cluster: 0 means the number of nodes (1 for --brokers).
	replicationFactor int16
	// compare lists targets run one after the other ("cluster", "single",
	// "kfake", "kfake-blackhole"); empty means the target (--brokers or
	// the embedded broker), then --against if given.
	compare     []string
	topic       string
	recordSize  int
	partitions  int32
	concurrency int // kgo clients producing in parallel
	acks        string
	compression string
	duration    time.Duration
	warmup      time.Duration
	rate        float64 // records/s over all clients; 0 = as fast as possible
	against     string  // "", "kfake" or "kfake-blackhole"
	cpuProfile  string  // pprof output of the first target's run, or ""
	// txnRecords is how many records each transaction of a "+txn" target
	// holds (bench_txn.go).
	txnRecords int
	// txn: this run's target produces in transactions (set per target).
	txn bool
}

// benchTarget is one broker a run measures.
type benchTarget struct {
	kind  string // "brokers", "embedded", "kfake" or "kfake-blackhole"
	nodes int    // embedded: how many nodes
	rf    int16  // replication factor of the bench topic
	txn   bool   // produce in transactions of txnRecords records
}

// targets are the brokers the run measures, in order.
func (bc benchConfig) targets() []benchTarget {
	rf := bc.replicationFactor
	if rf == 0 {
		rf = int16(bc.nodes)
	}
	if len(bc.compare) == 0 {
		t := []benchTarget{{kind: "embedded", nodes: bc.nodes, rf: rf}}
		if len(bc.brokers) > 0 {
			t[0] = benchTarget{kind: "brokers", rf: rf}
		}
		if bc.against != "" {
			t = append(t, benchTarget{kind: bc.against, nodes: 1, rf: 1})
		}
		return t
	}
	var ts []benchTarget
	for _, name := range bc.compare {
		name, txn := strings.CutSuffix(name, "+txn")
		var t benchTarget
		switch name {
		case "cluster":
			t = benchTarget{kind: "embedded", nodes: bc.nodes, rf: rf}
		case "single":
			t = benchTarget{kind: "embedded", nodes: 1, rf: 1}
		default:
			t = benchTarget{kind: name, nodes: 1, rf: 1}
		}
		t.txn = txn
		ts = append(ts, t)
	}
	return ts
}

// benchResult is what one target did inside the measured window.
type benchResult struct {
	target   string
	records  int64
	bytes    int64 // record values only
	errors   int64
	firstErr error
	elapsed  time.Duration
	latency  *hdrhistogram.Histogram // microseconds, one value per record
}

// Latencies are kept in microseconds up to a minute with 3 significant
// digits: a record slower than that is an outage, not a percentile.
const maxLatencyMicros = int64(time.Minute / time.Microsecond)

func newLatencyHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, maxLatencyMicros, 3)
}

func bench(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "produce" {
		fmt.Fprint(stderr, "usage: chronik-actor bench produce [flags]\n")
		return exitUsage
	}
	bc, err := parseBenchFlags(args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "chronik-actor bench produce: %v\n", err)
		return exitUsage
	}
	// Ctrl-C ends the measurement early and still prints what was measured
	// (and removes the embedded broker's data).
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	targets := bc.targets()
	fmt.Fprintln(stdout, describeWorkload(bc, targets))
	var results []benchResult
	for i, t := range targets {
		stopProfile := func() {}
		if i == 0 {
			var err error
			if stopProfile, err = startCPUProfile(bc.cpuProfile); err != nil {
				fmt.Fprintf(stderr, "chronik-actor bench produce: %v\n", err)
				return exitFailure
			}
		} else {
			if ctx.Err() != nil {
				break
			}
			// Start from a collected heap so that garbage of one run is
			// not charged to the next.
			runtime.GC()
		}
		r, err := measure(ctx, bc, t, stderr)
		stopProfile()
		if err != nil {
			fmt.Fprintf(stderr, "chronik-actor bench produce: %v\n", err)
			return exitFailure
		}
		results = append(results, r)
	}

	printResults(stdout, results)
	for _, r := range results {
		if r.firstErr != nil {
			fmt.Fprintf(stderr, "%s: first error: %v\n", r.target, r.firstErr)
		}
		if r.records == 0 {
			return exitFailure
		}
	}
	return exitOK
}

// measure runs the workload against one target, with the topic's
// replication factor of that target.
func measure(ctx context.Context, bc benchConfig, t benchTarget, stderr io.Writer) (benchResult, error) {
	bc.replicationFactor, bc.txn = t.rf, t.txn
	// Every target gets a topic of its own: a "+txn" run on the same
	// broker kind must not read the previous target's leftovers.
	bc.topic += "-" + strconv.FormatUint(rand.Uint64()>>40, 16)
	var r benchResult
	var err error
	if t.kind == "kfake" || t.kind == "kfake-blackhole" {
		r, err = measureKfake(ctx, bc, t.kind == "kfake-blackhole", stderr)
	} else {
		r, err = measureTarget(ctx, bc, t, stderr)
	}
	if err == nil && t.txn {
		r.target += fmt.Sprintf(", transactions of %d", bc.txnRecords)
	}
	return r, err
}

// measureTarget runs the workload against --brokers, or an embedded broker
// (one node, or a cluster of t.nodes) that is stopped (and its data
// removed) before returning, so that it neither holds memory nor competes
// for CPU during the next target's run.
func measureTarget(ctx context.Context, bc benchConfig, t benchTarget, stderr io.Writer) (benchResult, error) {
	seeds, target := bc.brokers, strings.Join(bc.brokers, ",")
	switch {
	case t.kind == "embedded" && t.nodes == 1:
		addr, stop, err := startEmbedded(stderr)
		if err != nil {
			return benchResult{}, fmt.Errorf("embedded broker: %w", err)
		}
		defer stop()
		seeds, target = []string{addr}, "chronik-actor (embedded)"
	case t.kind == "embedded":
		addrs, stop, err := startEmbeddedCluster(stderr, t.nodes)
		if err != nil {
			return benchResult{}, fmt.Errorf("embedded cluster: %w", err)
		}
		defer stop()
		seeds, target = addrs, fmt.Sprintf("chronik-actor (embedded, %d nodes, RF %d)", t.nodes, t.rf)
	}
	fmt.Fprintf(stderr, "producing to %s for %v ...\n", target, bc.warmup+bc.duration)
	r, err := produceBench(ctx, bc, seeds)
	if err != nil {
		return benchResult{}, fmt.Errorf("%s: %w", target, err)
	}
	r.target = target
	return r, nil
}

// measureKfake runs the same workload against franz-go's fake broker in
// this process: a yardstick for this machine at its current load. By
// default kfake keeps the records in memory (the baseline the issue names:
// in memory, never fsynced); "kfake-blackhole" validates and acknowledges
// but keeps nothing, an upper bound that measures only the client and the
// wire.
func measureKfake(ctx context.Context, bc benchConfig, blackhole bool, stderr io.Writer) (benchResult, error) {
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	target := "kfake"
	if blackhole {
		opts = append(opts, kfake.BlackholeProduce())
		target = "kfake (blackhole)"
	}
	fake, err := kfake.NewCluster(opts...)
	if err != nil {
		return benchResult{}, fmt.Errorf("kfake: %w", err)
	}
	defer fake.Close()
	fmt.Fprintf(stderr, "producing to kfake for %v ...\n", bc.warmup+bc.duration)
	r, err := produceBench(ctx, bc, fake.ListenAddrs())
	if err != nil {
		return benchResult{}, fmt.Errorf("kfake: %w", err)
	}
	r.target = target
	return r, nil
}

func defaultBenchConfig() benchConfig {
	return benchConfig{
		topic:       "bench-" + strconv.FormatUint(rand.Uint64()>>32, 16),
		recordSize:  1024,
		partitions:  6,
		concurrency: 4,
		nodes:       1,
		acks:        "all",
		compression: "none",
		duration:    30 * time.Second,
		warmup:      2 * time.Second,
		txnRecords:  100,
	}
}

func parseBenchFlags(args []string, stderr io.Writer) (benchConfig, error) {
	bc := defaultBenchConfig()
	fs := flag.NewFlagSet("chronik-actor bench produce", flag.ContinueOnError)
	fs.SetOutput(stderr)
	brokers := fs.String("brokers", "", "comma-separated seed brokers; empty starts an embedded broker on 127.0.0.1:0")
	fs.IntVar(&bc.nodes, "nodes", bc.nodes, "nodes of the embedded broker: 1 is a single node; more start a cluster in this process (loopback ports, data under one temp dir)")
	rf := fs.Int("replication-factor", 0, "replication factor of the topic on the embedded cluster or --brokers; 0 means the number of --nodes (1 with --brokers); a single node and kfake always get 1")
	compare := fs.String("compare", "", `comma-separated targets run one after the other in this run, each with the same workload, instead of the target and --against: "cluster" (the embedded cluster of --nodes, 2 or more), "single" (an embedded single node), "kfake", "kfake-blackhole"; e.g. --nodes 3 --compare cluster,single,kfake; a "+txn" suffix (single+txn) produces in transactions of --txn-records records`)
	fs.IntVar(&bc.txnRecords, "txn-records", bc.txnRecords, `records per transaction of the "+txn" targets of --compare`)
	fs.StringVar(&bc.topic, "topic", bc.topic, "topic to create and produce to")
	fs.IntVar(&bc.recordSize, "record-size", bc.recordSize, "bytes of random value per record")
	partitions := fs.Int("partitions", int(bc.partitions), "partitions of the topic")
	fs.IntVar(&bc.concurrency, "concurrency", bc.concurrency, "kgo clients producing in parallel")
	fs.StringVar(&bc.acks, "acks", bc.acks, "all, 1 or 0")
	fs.StringVar(&bc.compression, "compression", bc.compression, "none, gzip, snappy, lz4 or zstd")
	fs.DurationVar(&bc.duration, "duration", bc.duration, "measured time")
	fs.StringVar(&bc.cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the run against the first target (the target, or the first of --compare) to this file")
	fs.DurationVar(&bc.warmup, "warmup", bc.warmup, "unmeasured time before it")
	fs.Float64Var(&bc.rate, "rate", bc.rate, "records/s over all clients; 0 = as fast as possible")
	fs.StringVar(&bc.against, "against", bc.against, `"kfake" also runs the workload against an in-process kfake (records kept in memory) and compares; "kfake-blackhole" against one that keeps nothing`)
	if err := fs.Parse(args); err != nil {
		return bc, err
	}
	if fs.NArg() > 0 {
		return bc, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			bc.brokers = append(bc.brokers, b)
		}
	}
	bc.partitions = int32(min(max(*partitions, 0), 1<<20))
	bc.replicationFactor = int16(min(max(*rf, 0), 1<<14))
	seen := map[string]bool{}
	for _, t := range strings.Split(*compare, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		switch base, _ := strings.CutSuffix(t, "+txn"); base {
		case "cluster", "single", "kfake", "kfake-blackhole":
		default:
			return bc, fmt.Errorf("--compare: %q is not cluster, single, kfake or kfake-blackhole, with or without +txn", t)
		}
		if seen[t] {
			return bc, fmt.Errorf("--compare: %s given twice", t)
		}
		seen[t] = true
		bc.compare = append(bc.compare, t)
	}
	embeddedCluster := bc.nodes > 1 && len(bc.brokers) == 0 && (len(bc.compare) == 0 || seen["cluster"] || seen["cluster+txn"])
	switch {
	case bc.topic == "":
		return bc, errors.New("--topic: empty")
	case bc.recordSize < 1:
		return bc, fmt.Errorf("--record-size: %d is less than 1", bc.recordSize)
	case *partitions < 1 || *partitions > 1<<20:
		return bc, fmt.Errorf("--partitions: %d is not between 1 and %d", *partitions, 1<<20)
	case bc.concurrency < 1:
		return bc, fmt.Errorf("--concurrency: %d is less than 1", bc.concurrency)
	case bc.duration <= 0:
		return bc, fmt.Errorf("--duration: %v is not positive", bc.duration)
	case bc.warmup < 0:
		return bc, fmt.Errorf("--warmup: %v is negative", bc.warmup)
	case bc.rate < 0:
		return bc, fmt.Errorf("--rate: %v is negative", bc.rate)
	case bc.against != "" && bc.against != "kfake" && bc.against != "kfake-blackhole":
		return bc, fmt.Errorf("--against: %q is not kfake or kfake-blackhole", bc.against)
	case bc.nodes < 1 || bc.nodes > 16:
		return bc, fmt.Errorf("--nodes: %d is not between 1 and 16", bc.nodes)
	case bc.nodes > 1 && len(bc.brokers) > 0:
		return bc, errors.New("--nodes: an embedded cluster and --brokers exclude each other")
	case *rf < 0 || *rf > 1<<14:
		return bc, fmt.Errorf("--replication-factor: %d is not between 0 and %d", *rf, 1<<14)
	case embeddedCluster && *rf > bc.nodes:
		return bc, fmt.Errorf("--replication-factor: %d is more than the %d --nodes", *rf, bc.nodes)
	case *rf > 1 && len(bc.brokers) == 0 && !embeddedCluster:
		return bc, fmt.Errorf("--replication-factor: %d needs --nodes %d or more (or --brokers)", *rf, *rf)
	case len(bc.compare) > 0 && len(bc.brokers) > 0:
		return bc, errors.New("--compare: runs embedded brokers and kfake; it does not take --brokers")
	case len(bc.compare) > 0 && bc.against != "":
		return bc, errors.New("--compare: lists every target; name kfake there instead of --against")
	case bc.txnRecords < 1:
		return bc, fmt.Errorf("--txn-records: %d is less than 1", bc.txnRecords)
	case (seen["cluster"] || seen["cluster+txn"]) && bc.nodes < 2:
		return bc, errors.New("--compare: cluster needs --nodes 2 or more")
	}
	if len(bc.brokers) > 0 && bc.replicationFactor == 0 {
		bc.replicationFactor = 1
	}
	if _, err := producerOpts(bc); err != nil {
		return bc, err
	}
	return bc, nil
}

// producerOpts are the kgo options of every bench client: tuned for
// throughput, the same for every target.
func producerOpts(bc benchConfig) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.ClientID("chronik-bench"),
		kgo.DefaultProduceTopic(bc.topic),
		// A short linger fills batches under load without adding much to
		// the latency of a paced, light workload.
		kgo.ProducerLinger(5 * time.Millisecond),
		// Enough buffered to keep every partition's pipeline full; bounded
		// in bytes so that an unpaced run measures the broker rather than
		// how long a huge client-side queue takes to drain.
		kgo.MaxBufferedRecords(1 << 16),
		kgo.MaxBufferedBytes(8 << 20),
		// A broker that stops answering shows up as errors, not a hang.
		kgo.RecordDeliveryTimeout(30 * time.Second),
	}
	switch bc.acks {
	case "all", "-1":
		// Idempotence is kgo's default and needs acks=all.
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1", "0":
		acks := kgo.LeaderAck()
		if bc.acks == "0" {
			acks = kgo.NoAck()
		}
		// Without idempotence kgo allows one request in flight per broker
		// unless told otherwise; five matches the idempotent pipeline.
		opts = append(opts, kgo.RequiredAcks(acks), kgo.DisableIdempotentWrite(),
			kgo.MaxProduceRequestsInflightPerBroker(5))
	default:
		return nil, fmt.Errorf("--acks: %q is not all, 1 or 0", bc.acks)
	}
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(),
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(),
		"zstd": kgo.ZstdCompression(),
	}
	codec, ok := codecs[bc.compression]
	if !ok {
		return nil, fmt.Errorf("--compression: %q is not none, gzip, snappy, lz4 or zstd", bc.compression)
	}
	return append(opts, kgo.ProducerBatchCompression(codec)), nil
}

// produceBench creates the topic on seeds, produces for warmup+duration
// and reports what was acknowledged during the measured window.
func produceBench(ctx context.Context, bc benchConfig, seeds []string) (benchResult, error) {
	opts, err := producerOpts(bc)
	if err != nil {
		return benchResult{}, err
	}
	opts = append(opts, kgo.SeedBrokers(seeds...))
	if err := createTopic(ctx, bc, opts); err != nil {
		return benchResult{}, err
	}

	// Values are windows into one random buffer at random offsets: random
	// enough that compression and deduplication gain nothing, without
	// paying for fresh random bytes per record.
	pool := make([]byte, 4<<20+bc.recordSize)
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], rand.Uint64())
	}
	_, _ = rand.NewChaCha8(seed).Read(pool)

	clients := make([]*kgo.Client, bc.concurrency)
	for i := range clients {
		copts := opts
		if bc.txn {
			copts = append(copts[:len(copts):len(copts)], kgo.TransactionalID(fmt.Sprintf("%s-%d", bc.topic, i)))
		}
		if clients[i], err = kgo.NewClient(copts...); err != nil {
			for _, c := range clients[:i] {
				c.Close()
			}
			return benchResult{}, err
		}
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()

	base := time.Now()
	w := &window{
		start: base.Add(bc.warmup),
		hists: make([]*hdrhistogram.Histogram, bc.concurrency),
	}
	w.end.Store(int64(bc.warmup + bc.duration))
	w.base = base
	runCtx, stop := context.WithDeadline(ctx, base.Add(bc.warmup+bc.duration))
	defer stop()

	var wg sync.WaitGroup
	for i, cl := range clients {
		w.hists[i] = newLatencyHistogram()
		c := &benchClient{cl: cl, w: w, hist: w.hists[i], pool: pool, size: bc.recordSize,
			rng: rand.New(rand.NewPCG(uint64(i), rand.Uint64()))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if bc.txn {
				c.transactions(runCtx, bc.txnRecords)
				return
			}
			if bc.rate > 0 {
				// Offset each client's schedule so that the clients do
				// not fire in lockstep.
				per := bc.rate / float64(bc.concurrency)
				c.paced(runCtx, base, per, float64(i)/float64(bc.concurrency))
			} else {
				c.unpaced(runCtx)
			}
		}()
	}
	<-runCtx.Done()
	// An interrupted run ends its window now, so that rates divide by the
	// time actually measured.
	now := time.Now()
	if ended := now.Sub(base); ended < time.Duration(w.end.Load()) {
		w.end.Store(int64(ended))
	}
	wg.Wait()

	res := benchResult{latency: newLatencyHistogram()}
	w.mu.Lock()
	defer w.mu.Unlock()
	res.records, res.bytes, res.errors, res.firstErr = w.records, w.bytes, w.errors, w.firstErr
	for _, h := range w.hists {
		res.latency.Merge(h)
	}
	if d := time.Duration(w.end.Load()) - bc.warmup; d > 0 {
		res.elapsed = d
	}
	return res, nil
}

// createTopic creates the bench topic and waits until every partition has
// a leader, so that the first measured seconds are not leader elections.
func createTopic(ctx context.Context, bc benchConfig, opts []kgo.Opt) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	// A cluster that has only just started answers NOT_CONTROLLER (or
	// nothing in time) until its controller group has elected a leader:
	// retriable errors are tried again until the deadline.
	for {
		_, err := adm.CreateTopic(ctx, bc.partitions, bc.replicationFactor, nil, bc.topic)
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			break
		}
		var ke *kerr.Error
		if errors.As(err, &ke) && !ke.Retriable {
			return fmt.Errorf("create topic %s: %w", bc.topic, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("create topic %s: %w", bc.topic, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for {
		ready, err := topicReady(ctx, adm, bc.topic)
		if ready {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s has no leader for every partition: %v", bc.topic, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func topicReady(ctx context.Context, adm *kadm.Client, topic string) (bool, error) {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return false, err
	}
	td, ok := details[topic]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return false, td.Err
	}
	for _, p := range td.Partitions {
		if p.Leader < 0 || p.Err != nil {
			return false, p.Err
		}
	}
	return true, nil
}

// window collects the acknowledgements that arrive between start and end.
// Counting by arrival, not by send time, keeps records that sat in the
// client's buffer from inflating the rate.
type window struct {
	base  time.Time
	start time.Time
	end   atomic.Int64 // nanoseconds after base; shortened by an interrupt

	mu       sync.Mutex // promises of all clients run concurrently
	records  int64
	bytes    int64
	errors   int64
	firstErr error
	hists    []*hdrhistogram.Histogram
}

type benchClient struct {
	cl   *kgo.Client
	w    *window
	hist *hdrhistogram.Histogram
	pool []byte
	size int
	rng  *rand.Rand
}

func (c *benchClient) value() []byte {
	off := c.rng.IntN(len(c.pool) - c.size + 1)
	return c.pool[off : off+c.size : off+c.size]
}

// send produces one record whose latency counts from sentAt. kgo truncates
// Record.Timestamp to milliseconds (and drops the monotonic clock), so the
// start time travels in the promise's closure instead.
func (c *benchClient) send(ctx context.Context, sentAt time.Time) {
	c.cl.Produce(ctx, &kgo.Record{Value: c.value()}, func(r *kgo.Record, err error) {
		c.done(sentAt, r, err)
	})
}

func (c *benchClient) done(sentAt time.Time, r *kgo.Record, err error) {
	now := time.Now()
	w := c.w
	if now.Before(w.start) || now.Sub(w.base) >= time.Duration(w.end.Load()) {
		return
	}
	// The run's own deadline cancels what is still buffered; that is the
	// end of the test, not a broker error.
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	lat := min(max(now.Sub(sentAt).Microseconds(), 1), maxLatencyMicros)
	w.mu.Lock()
	if err != nil {
		w.errors++
		if w.firstErr == nil {
			w.firstErr = err
		}
	} else {
		w.records++
		w.bytes += int64(len(r.Value))
		_ = c.hist.RecordValue(lat) // clamped into range above
	}
	w.mu.Unlock()
}

// unpaced produces as fast as the client accepts records; Produce blocks
// while the buffer is full, and that wait is part of the latency.
func (c *benchClient) unpaced(ctx context.Context) {
	for ctx.Err() == nil {
		c.send(ctx, time.Now())
	}
}

// paced produces rate records/s on a fixed schedule starting at base
// (shifted by phase intervals). A record's latency counts from when it was
// scheduled, not from when it went out: if the broker stalls the sender,
// the records it could not send yet still wait in the numbers, which
// avoids coordinated omission. Behind schedule, it sends every due record
// at once rather than skipping any.
func (c *benchClient) paced(ctx context.Context, base time.Time, rate, phase float64) {
	interval := time.Duration(float64(time.Second) / rate)
	if interval <= 0 {
		c.unpaced(ctx)
		return
	}
	next := base.Add(time.Duration(phase * float64(interval)))
	timer := time.NewTimer(0)
	defer timer.Stop()
	for ctx.Err() == nil {
		if wait := time.Until(next); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		for now := time.Now(); !next.After(now) && ctx.Err() == nil; next = next.Add(interval) {
			c.send(ctx, next)
		}
	}
}

func describeWorkload(bc benchConfig, targets []benchTarget) string {
	rate := "unpaced"
	if bc.rate > 0 {
		rate = fmt.Sprintf("%g records/s", bc.rate)
	}
	rf := fmt.Sprint(targets[0].rf)
	for _, t := range targets[1:] {
		if t.rf != targets[0].rf {
			rf = "per target"
		}
	}
	return fmt.Sprintf("workload: topic %s, %d partitions (RF %s), %d-byte random values, acks=%s, compression=%s, %d clients, %s, %v measured after %v warm-up",
		bc.topic, bc.partitions, rf, bc.recordSize, bc.acks, bc.compression, bc.concurrency, rate, bc.duration, bc.warmup)
}

// stats are the printed figures of one result.
type stats struct {
	recordsPerSec, mbPerSec float64
	p50, p99, p999          float64 // milliseconds
}

func (r benchResult) stats() stats {
	var s stats
	if secs := r.elapsed.Seconds(); secs > 0 {
		s.recordsPerSec = float64(r.records) / secs
		s.mbPerSec = float64(r.bytes) / 1e6 / secs
	}
	ms := func(q float64) float64 { return float64(r.latency.ValueAtQuantile(q)) / 1000 }
	s.p50, s.p99, s.p999 = ms(50), ms(99), ms(99.9)
	return s
}

// printResults writes one aligned row per target and, with two targets or
// more, a row of ratios to the last target for each of the others.
func printResults(out io.Writer, results []benchResult) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\trecords/s\tMB/s\tp50 ms\tp99 ms\tp999 ms\terrors\t")
	for _, r := range results {
		s := r.stats()
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.3f\t%.3f\t%.3f\t%d\t\n",
			r.target, s.recordsPerSec, s.mbPerSec, s.p50, s.p99, s.p999, r.errors)
	}
	ratio := func(x, y float64) string {
		if y == 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", x/y)
	}
	if n := len(results); n >= 2 {
		last := results[n-1]
		b := last.stats()
		for _, r := range results[:n-1] {
			label := "ratio to " + last.target
			if n > 2 {
				label = r.target + " / " + last.target
			}
			a := r.stats()
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\t\n", label,
				ratio(a.recordsPerSec, b.recordsPerSec), ratio(a.mbPerSec, b.mbPerSec),
				ratio(a.p50, b.p50), ratio(a.p99, b.p99), ratio(a.p999, b.p999))
		}
	}
	_ = tw.Flush()
}

// startCPUProfile profiles the process (load generator and, when embedded,
// the broker) until the returned stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
