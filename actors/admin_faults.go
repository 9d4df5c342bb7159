package actors

import (
	"encoding/json"
	"net/http"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// serveFaults is /v1/faults, served only on a node run with [testing]
// faults = true (cluster.Config.TestFaults): GET answers the node's
// current network faults (cluster.FaultSettings), PUT replaces them with
// the JSON body and answers what is now set, 400 when the body is not
// valid. Tests that run nodes as processes split and heal the cluster
// through it (testkit.NewProcessCluster).
func (b *Broker) serveFaults(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut {
		var s cluster.FaultSettings
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&s); err != nil {
			http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		if err := b.faults.Set(s); err != nil {
			http.Error(w, "faults: "+err.Error(), http.StatusBadRequest)
			return
		}
		b.log.Warn("network faults set through the admin endpoint", "cut", s.Cut, "drop", s.Drop, "delay", s.Delay)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(b.faults.Settings()); err != nil {
		b.log.Debug("admin: writing /v1/faults", "err", err)
	}
}

// netFault is the transport's fault hook: the test's simulated network
// when the embedder set one, else the admin-set faults when enabled,
// else none.
func (b *Broker) netFault() cluster.NetFault {
	switch {
	case b.cfg.Network != nil:
		return b.cfg.Network
	case b.faults != nil:
		return b.faults.Fate
	}
	return nil
}
