package testkit

import (
	"math/rand"
	"sync"
	"time"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// hub is the simulated network of a LocalCluster: every node's transport
// asks it (cluster.Config.Network) about everything it sends a peer, so
// one object decides for the whole cluster. In order: a paused node
// neither sends nor receives anything; a partition loses everything
// between its sides, keepalives included (the nodes see each other down,
// as behind a firewall); then, for raft messages (and snapshots) only,
// the drop rate and the hook; the delay applies to everything but
// keepalives.
type hub struct {
	mu     sync.Mutex
	side   map[int32]int // node -> its group in the partition; nil when whole
	paused map[int32]bool
	drop   float64
	delay  time.Duration
	hook   func(NetMsg) Verdict
	rng    *rand.Rand
}

func newHub(seed int64) *hub {
	return &hub{paused: map[int32]bool{}, rng: rand.New(rand.NewSource(seed))}
}

// fate is every node's cluster.Config.Network.
func (h *hub) fate(o cluster.Outbound) cluster.Fate {
	from, to := int32(o.From), int32(o.To)
	raft := o.Kind == cluster.KindRaft || o.Kind == cluster.KindSnapshot
	h.mu.Lock()
	if h.paused[from] || h.paused[to] || h.apart(from, to) {
		h.mu.Unlock()
		return cluster.Fate{Drop: true}
	}
	if o.Kind == cluster.KindKeepalive {
		h.mu.Unlock()
		return cluster.Fate{}
	}
	if raft && h.drop > 0 && h.rng.Float64() < h.drop {
		h.mu.Unlock()
		return cluster.Fate{Drop: true}
	}
	f := cluster.Fate{Delay: h.delay}
	hook := h.hook
	h.mu.Unlock()
	// Outside the lock: the hook is the test's code, and may be slow.
	if raft && hook != nil {
		v := hook(NetMsg{From: from, To: to, Group: o.Group, Type: o.Type})
		if v.Drop {
			return cluster.Fate{Drop: true}
		}
		f.Delay += v.Delay
	}
	return f
}

// apart reports whether a partition separates a and b; h.mu is held.
func (h *hub) apart(a, b int32) bool {
	if h.side == nil {
		return false
	}
	sa, okA := h.side[a]
	sb, okB := h.side[b]
	return !okA || !okB || sa != sb
}

func (h *hub) partition(groups [][]int32) {
	side := map[int32]int{}
	for i, g := range groups {
		for _, id := range g {
			side[id] = i
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.side = side
}

func (h *hub) heal() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.side, h.drop, h.delay, h.hook = nil, 0, 0, nil
}

func (h *hub) setDrop(rate float64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drop = rate
}

func (h *hub) setDelay(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.delay = d
}

func (h *hub) setHook(f func(NetMsg) Verdict) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hook = f
}

func (h *hub) setPaused(id int32, paused bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if paused {
		h.paused[id] = true
	} else {
		delete(h.paused, id)
	}
}
