package actors

// The node's HTTP endpoint for operators, on cfg.AdminAddr when set:
//
//	GET /healthz     200 "ok" while the node serves Kafka, 503 before and after
//	GET /metrics     Prometheus text format (see admin_metrics.go)
//	GET /v1/cluster  JSON (cluster.View): this node's view of the nodes, the
//	                 controller and every partition, with the raft progress
//	                 of the groups it leads
//	GET/PUT /v1/faults  a test's network faults for this node
//	                 (admin_faults.go); only with [testing] faults = true,
//	                 404 otherwise
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
	"net/http/pprof"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chronik-actor/chronik-actor/cluster"
	"github.com/chronik-actor/chronik-actor/raftactor"
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
	if b.faults != nil {
		// Only with [testing] faults = true: otherwise the path is
		// unknown, 404, like any other.
		mux.HandleFunc("GET /v1/faults", b.serveFaults)
		mux.HandleFunc("PUT /v1/faults", b.serveFaults)
	}
	// Go's profiler, for an operator chasing CPU or memory on a live
	// node (go tool pprof http://ADMIN/debug/pprof/profile).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
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

// stopAdmin lets in-flight requests finish for a moment, then closes;
// not graceful, it closes at once.
func (b *Broker) stopAdmin(graceful bool) {
	if b.admin == nil {
		return
	}
	if !graceful {
		b.admin.srv.Close()
		<-b.admin.done
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

// The JSON of /v1/cluster is cluster.View; these names are the ones the
// handler and its tests use.
type (
	clusterView   = cluster.View
	topicView     = cluster.TopicView
	partitionView = cluster.PartitionView
)

// serveCluster reports this node's view: its configured nodes and whether
// it sees them up, the controller's leader, and every partition with its
// replicas and leader as the leader table says; where this node leads, the
// group's progress as its replica last published it.
func (b *Broker) serveCluster(w http.ResponseWriter, _ *http.Request) {
	md := b.controller.Metadata()
	cv := clusterView{NodeID: b.cfg.NodeID, Topics: make([]topicView, 0, len(md.Topics))}
	if p := b.advertised.Load(); p != nil {
		cv.KafkaAddr = *p
	}
	cv.Controller = cluster.ControllerView{Group: raftactor.ControllerGroup}
	cv.Controller.Leader, cv.Controller.LeaderEpoch = b.leaderEntry(raftactor.ControllerGroup)
	if !b.clustered() {
		cv.Controller.Leader = b.cfg.NodeID
	}
	if b.controllerReplica != nil && b.controllerReplica.Leader() == uint64(b.cfg.NodeID) {
		cv.Controller.Progress = progressOf(b.controllerReplica)
	}
	cv.ControllerID = cv.Controller.Leader
	cv.Nodes = b.nodeViews(cv.ControllerID, cv.KafkaAddr)
	for _, t := range md.Topics {
		tv := topicView{Name: t.Name, ID: base64.RawURLEncoding.EncodeToString(t.ID[:]),
			Partitions: make([]partitionView, len(t.Groups))}
		for i, group := range t.Groups {
			pv := partitionView{Partition: int32(i), Group: group, Replicas: t.Replicas[i],
				HighWatermark: -1, LogStartOffset: -1}
			if pv.Replicas == nil {
				pv.Replicas = []int32{}
			}
			pv.Leader, pv.LeaderEpoch = b.leaderEntry(group)
			if h := b.replicas.get(t.Name, int32(i)); h != nil && h.topic.ID == t.ID {
				v := h.sm.View()
				pv.HighWatermark, pv.LogStartOffset = v.HighWatermark(), v.LogStartOffset()
				if h.replica.Leader() == uint64(b.cfg.NodeID) {
					// Its own replica knows best: the table may lag it.
					pv.Leader, pv.LeaderEpoch = b.cfg.NodeID, h.replica.Term()
					pv.Progress = progressOf(h.replica)
				}
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

// leaderEntry is group's leader and its term as the leader table has
// them, -1 and -1 when it has no leader.
func (b *Broker) leaderEntry(group uint64) (leader, epoch int32) {
	e, ok := b.peers.leaders.Get(group)
	if !ok || e.Leader == 0 {
		return -1, -1
	}
	return int32(e.Leader), int32(e.Term)
}

// progressOf is the group's progress as r last published it while
// leading, nil when it has not (a follower, or before its first tick).
func progressOf(r *raftactor.Replica) *cluster.Progress {
	st := r.GroupStatus()
	if st == nil {
		return nil
	}
	p := &cluster.Progress{Term: st.Term, Commit: st.Commit, LastIndex: st.LastIndex,
		Replicas: make([]cluster.ReplicaProgress, len(st.Voters))}
	for i, v := range st.Voters {
		rp := cluster.ReplicaProgress{ID: int32(v.ID), Match: v.Match, InSync: v.InSync}
		if st.LastIndex > v.Match {
			rp.Lag = st.LastIndex - v.Match
		}
		p.Replicas[i] = rp
	}
	return p
}

// nodeViews are the configured nodes as this node sees them; a single
// node without [[nodes]] is the one entry.
func (b *Broker) nodeViews(controller int32, kafka string) []cluster.NodeView {
	self := cluster.NodeView{ID: b.cfg.NodeID, Kafka: kafka, Raft: b.cfg.RaftAddr,
		Admin: b.selfAdminAddr(), Rack: b.cfg.Rack, Up: true, Controller: controller == b.cfg.NodeID}
	if len(b.cfg.Nodes) == 0 {
		return []cluster.NodeView{self}
	}
	out := make([]cluster.NodeView, 0, len(b.cfg.Nodes))
	for _, n := range b.cfg.Nodes {
		if n.ID == b.cfg.NodeID {
			out = append(out, self)
			continue
		}
		nv := cluster.NodeView{ID: n.ID, Kafka: n.Kafka, Raft: n.Raft, Admin: n.Admin, Rack: n.Rack,
			Up: b.live(n.ID), Controller: controller == n.ID}
		if host, port, ok := b.brokerAddr(n.ID); ok {
			nv.Kafka = net.JoinHostPort(host, strconv.Itoa(int(port)))
		}
		out = append(out, nv)
	}
	return out
}

// selfAdminAddr is this node's admin address as configured, or as bound
// when the configured one names port 0.
func (b *Broker) selfAdminAddr() string {
	if _, port, err := net.SplitHostPort(b.cfg.AdminAddr); err == nil && port == "0" {
		return b.AdminAddr()
	}
	return b.cfg.AdminAddr
}
