package actors

// The node's HTTP endpoint for operators, on cfg.AdminAddr when set:
//
//	GET /healthz     200 "ok" while the node serves Kafka, 503 before and after
//	GET /metrics     Prometheus text format (see admin_metrics.go)
//	GET /v1/cluster  JSON: this node and the topics and partitions it knows
//
// It listens before the node replays its partitions, so that a slow start
// shows up as 503 rather than as a refused connection.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminServer is the running HTTP server and the goroutine serving it.
type adminServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// startAdmin listens on cfg.AdminAddr and serves in the background. The
// controller must be open: /v1/cluster reads its metadata.
func (b *Broker) startAdmin() error {
	ln, err := net.Listen("tcp", b.cfg.AdminAddr)
	if err != nil {
		return fmt.Errorf("admin listen %s: %w", b.cfg.AdminAddr, err)
	}
	errLog := slog.NewLogLogger(b.log.With("component", "admin").Handler(), slog.LevelWarn)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", b.serveHealthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(b.metrics.reg, promhttp.HandlerOpts{
		ErrorLog: errLog,
		// One failing collector should not blank the whole scrape.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      b.metrics.reg,
	}))
	mux.HandleFunc("GET /v1/cluster", b.serveCluster)
	a := &adminServer{
		ln: ln,
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          errLog,
		},
		done: make(chan struct{}),
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("admin server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
	b.admin = a
	b.log.Info("admin listening", "addr", ln.Addr().String())
	return nil
}

// stopAdmin lets in-flight requests finish for a moment, then closes.
func (b *Broker) stopAdmin() {
	if b.admin == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.admin.srv.Shutdown(ctx); err != nil {
		b.admin.srv.Close()
	}
	<-b.admin.done
}

// AdminAddr is the bound admin HTTP address, or "" when there is none.
func (b *Broker) AdminAddr() string {
	if b.admin == nil {
		return ""
	}
	return b.admin.ln.Addr().String()
}

func (b *Broker) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !b.serving.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not serving")
		return
	}
	fmt.Fprintln(w, "ok")
}

// clusterView is the JSON of /v1/cluster.
type clusterView struct {
	NodeID    int32       `json:"node_id"`
	KafkaAddr string      `json:"kafka_addr"` // as advertised to clients; "" until bound
	Topics    []topicView `json:"topics"`
}

type topicView struct {
	Name       string          `json:"name"`
	ID         string          `json:"id"` // as Kafka prints it: URL-safe base64, no padding
	Partitions []partitionView `json:"partitions"`
}

// partitionView reports leader -1 and offsets -1 for a partition whose
// replica is not (yet) open here, as Metadata reports LEADER_NOT_AVAILABLE.
type partitionView struct {
	Partition      int32 `json:"partition"`
	Leader         int32 `json:"leader"`
	LeaderEpoch    int32 `json:"leader_epoch"`
	HighWatermark  int64 `json:"high_watermark"`
	LogStartOffset int64 `json:"log_start_offset"`
}

func (b *Broker) serveCluster(w http.ResponseWriter, _ *http.Request) {
	md := b.controller.Metadata()
	cv := clusterView{NodeID: b.cfg.NodeID, Topics: make([]topicView, 0, len(md.Topics))}
	if p := b.advertised.Load(); p != nil {
		cv.KafkaAddr = *p
	}
	for _, t := range md.Topics {
		tv := topicView{Name: t.Name, ID: base64.RawURLEncoding.EncodeToString(t.ID[:]),
			Partitions: make([]partitionView, len(t.Groups))}
		for i := range t.Groups {
			pv := partitionView{Partition: int32(i), Leader: -1, LeaderEpoch: -1, HighWatermark: -1, LogStartOffset: -1}
			if h := b.replicas.get(t.Name, int32(i)); h != nil && h.topic.ID == t.ID {
				v := h.sm.View()
				pv.Leader, pv.LeaderEpoch = b.cfg.NodeID, h.replica.Term()
				pv.HighWatermark, pv.LogStartOffset = v.HighWatermark(), v.LogStartOffset()
			}
			tv.Partitions[i] = pv
		}
		cv.Topics = append(cv.Topics, tv)
	}
	sort.Slice(cv.Topics, func(i, j int) bool { return cv.Topics[i].Name < cv.Topics[j].Name })
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cv); err != nil {
		b.log.Debug("admin: writing /v1/cluster", "err", err)
	}
}
