package actors

// The node's Prometheus metrics. Each Broker has its own registry, so that
// tests running several brokers in one process do not collide. The request
// path only ever adds to a counter that exists already (an atomic add);
// everything that can be read off the node's state (connections, hosted
// partitions, offsets and log sizes) is read at scrape time instead.

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// brokerMetrics holds the counters the request path updates, and the
// registry the admin endpoint serves.
type brokerMetrics struct {
	reg *prometheus.Registry

	// requests is indexed by API key; nil where no handler is registered.
	// Children are resolved once here so that counting a request does not
	// hash a label value.
	requests []prometheus.Counter
	// bytesIn counts record batch bytes that produce requests proposed to
	// a partition; bytesOut counts record batch bytes in fetch responses.
	bytesIn  prometheus.Counter
	bytesOut prometheus.Counter
	// notLeader counts produce proposals a replica refused because it did
	// not lead (or was stopping): the client refreshes metadata and retries.
	notLeader prometheus.Counter
}

func newBrokerMetrics(b *Broker) *brokerMetrics {
	m := &brokerMetrics{
		reg: prometheus.NewRegistry(),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronik_produce_bytes_in_total",
			Help: "Record batch bytes of produce requests proposed to a partition.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronik_fetch_bytes_out_total",
			Help: "Record batch bytes returned in fetch responses.",
		}),
		notLeader: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronik_produce_proposals_not_leader_total",
			Help: "Produce proposals refused by a partition replica that did not lead or was stopping.",
		}),
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "chronik_kafka_requests_total",
		Help: "Kafka requests received, by API.",
	}, []string{"api"})
	maxKey := kmsg.Key(0)
	for k := range handlers {
		maxKey = max(maxKey, k)
	}
	m.requests = make([]prometheus.Counter, int(maxKey)+1)
	for k := range handlers {
		m.requests[k] = requests.WithLabelValues(k.Name())
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		requests, m.bytesIn, m.bytesOut, m.notLeader,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "chronik_open_connections",
			Help: "Open Kafka client connections.",
		}, func() float64 { return float64(b.conns.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "chronik_request_memory_bytes",
			Help: "Bytes of requests read and not yet answered, reserved in the node's request budget.",
		}, func() float64 { return float64(b.reqMem.inUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "chronik_request_memory_limit_bytes",
			Help: "The node's request budget (request_memory_bytes).",
		}, func() float64 { return float64(b.reqMem.limit) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "chronik_request_memory_waits_total",
			Help: "Request frames whose reading waited for the request budget.",
		}, func() float64 { return float64(b.reqMem.waits.Load()) }),
		partitionCollector{b},
	)
	return m
}

// request counts one request of API key; keys without a handler are
// refused before they get here.
func (m *brokerMetrics) request(key int16) {
	if key >= 0 && int(key) < len(m.requests) && m.requests[key] != nil {
		m.requests[key].Inc()
	}
}

var (
	partitionLabels   = []string{"topic", "partition"}
	partitionsHostedD = prometheus.NewDesc("chronik_partitions_hosted",
		"Partition replicas hosted on this node.", nil, nil)
	highWatermarkD = prometheus.NewDesc("chronik_partition_high_watermark",
		"Offset after the last record of the partition visible to consumers.", partitionLabels, nil)
	logStartOffsetD = prometheus.NewDesc("chronik_partition_log_start_offset",
		"First offset held by the partition's log.", partitionLabels, nil)
	logSizeD = prometheus.NewDesc("chronik_partition_log_size_bytes",
		"Bytes of record batches held by the partition's log.", partitionLabels, nil)
	leaderEpochD = prometheus.NewDesc("chronik_partition_leader_epoch",
		"Leader epoch (raft term) of the partition.", partitionLabels, nil)
	quiescedD = prometheus.NewDesc("chronik_partitions_quiesced",
		"Partition replicas hosted here that are quiesced (idle: not ticking).", nil, nil)
)

// partitionCollector reads every hosted partition's current read view at
// scrape time, so the write path does no metrics work at all.
type partitionCollector struct{ b *Broker }

func (partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{partitionsHostedD, quiescedD, highWatermarkD, logStartOffsetD, logSizeD, leaderEpochD} {
		ch <- d
	}
}

func (pc partitionCollector) Collect(ch chan<- prometheus.Metric) {
	// Copy the handles out first: sending on ch may wait for the registry,
	// and the controller must not wait on a scrape to add a topic.
	var hs []*partitionHandle
	pc.b.replicas.each(func(h *partitionHandle) { hs = append(hs, h) })
	ch <- prometheus.MustNewConstMetric(partitionsHostedD, prometheus.GaugeValue, float64(len(hs)))
	quiet := 0
	for _, h := range hs {
		if h.replica.Quiesced() {
			quiet++
		}
	}
	ch <- prometheus.MustNewConstMetric(quiescedD, prometheus.GaugeValue, float64(quiet))
	for _, h := range hs {
		v := h.sm.View()
		if v.LogClosed() {
			continue // deleted or stopping
		}
		topic, part := h.topic.Name, strconv.Itoa(int(h.index))
		ch <- prometheus.MustNewConstMetric(highWatermarkD, prometheus.GaugeValue, float64(v.HighWatermark()), topic, part)
		ch <- prometheus.MustNewConstMetric(logStartOffsetD, prometheus.GaugeValue, float64(v.LogStartOffset()), topic, part)
		ch <- prometheus.MustNewConstMetric(logSizeD, prometheus.GaugeValue, float64(v.SizeBytes()), topic, part)
		ch <- prometheus.MustNewConstMetric(leaderEpochD, prometheus.GaugeValue, float64(h.replica.Term()), topic, part)
	}
}
