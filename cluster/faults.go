package cluster

import (
	"fmt"
	"math/rand"
	"sync"
	"time"
)

// Faults is a node's injected network faults, set at run time: what a
// node run with [testing] faults = true does to what it sends, as set
// through its admin endpoint (/v1/faults) by a test that runs nodes as
// processes (testkit.NewProcessCluster). Its Fate is the node's
// transport hook. The zero value injects nothing.
//
// It acts on the sending side only: to cut two nodes apart, both are
// told to cut the other, as testkit does.
type Faults struct {
	mu    sync.Mutex
	s     FaultSettings
	cut   map[uint64]bool
	delay time.Duration
	rng   *rand.Rand
}

// FaultSettings is the JSON of /v1/faults.
type FaultSettings struct {
	// Cut are the peers this node sends nothing to (raft messages,
	// calls, notices, keepalives, snapshots), as a firewall would: they
	// see it down.
	Cut []int32 `json:"cut"`
	// Drop loses each raft message to the peers not cut with this
	// probability, from 0 to 1.
	Drop float64 `json:"drop"`
	// Delay holds everything but keepalives this long before it is
	// queued for its peer, a Go duration ("50ms"); "" or "0s" for none.
	Delay string `json:"delay"`
	// Seed seeds the drop decisions (math/rand); 0 keeps the current
	// source.
	Seed int64 `json:"seed,omitempty"`
}

// Set replaces the settings, or returns why they are not valid (and
// keeps the old ones).
func (f *Faults) Set(s FaultSettings) error {
	var delay time.Duration
	if s.Delay != "" {
		d, err := time.ParseDuration(s.Delay)
		if err != nil || d < 0 {
			return fmt.Errorf("delay %q is not a duration such as \"50ms\"", s.Delay)
		}
		delay = d
	}
	if !(s.Drop >= 0 && s.Drop <= 1) {
		return fmt.Errorf("drop %v is not a probability from 0 to 1", s.Drop)
	}
	cut := map[uint64]bool{}
	for _, id := range s.Cut {
		if id < 1 {
			return fmt.Errorf("cut: %d is not a node id", id)
		}
		cut[uint64(id)] = true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.Seed != 0 || f.rng == nil {
		f.rng = rand.New(rand.NewSource(s.Seed))
	}
	s.Delay = delay.String()
	f.s, f.cut, f.delay = s, cut, delay
	return nil
}

// Settings are the current settings.
func (f *Faults) Settings() FaultSettings {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.s
	s.Cut = append([]int32{}, s.Cut...)
	if s.Delay == "" {
		s.Delay = "0s"
	}
	return s
}

// Fate is the NetFault of the settings.
func (f *Faults) Fate(o Outbound) Fate {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut[o.To] {
		return Fate{Drop: true}
	}
	if o.Kind == KindKeepalive {
		return Fate{}
	}
	if (o.Kind == KindRaft || o.Kind == KindSnapshot) && f.s.Drop > 0 && f.rng.Float64() < f.s.Drop {
		return Fate{Drop: true}
	}
	return Fate{Delay: f.delay}
}
