package groups

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

// Target assignment and reconciliation, as Kafka's GroupMetadataManager
// and CurrentAssignmentBuilder do them. The target is recomputed whenever
// the group epoch is bumped; each member then moves towards its target
// on its own heartbeats:
//
//   - partitions it owns but should not are revoked first, and the member
//     keeps its epoch until its heartbeat no longer reports them;
//   - only then does it take its new partitions and the target epoch,
//     and of those only the ones no other member still owns (assigned or
//     revoking); the rest follow on later heartbeats, once released.
//
// So a partition has at most one owner at any time, whatever the order of
// heartbeats.

// memberTopics resolves m's subscription against md: the named topics
// that exist and, with a regex, every topic it matches in full.
func memberTopics(m *consumerMember, md *raftactor.Metadata) []string {
	var out []string
	for _, t := range m.subscribed {
		if md.Topics[t] != nil {
			out = append(out, t)
		}
	}
	if m.regex != "" {
		if re, err := regexp.Compile("^(?:" + m.regex + ")$"); err == nil {
			for name := range md.Topics {
				if re.MatchString(name) && !containsString(m.subscribed, name) {
					out = append(out, name)
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// subscribedTopicInfo is every topic some member subscribes to, by id.
func (g *group) subscribedTopicInfo(md *raftactor.Metadata) map[[16]byte]assignTopic {
	topics := map[[16]byte]assignTopic{}
	for _, m := range g.consumer.members {
		for _, name := range memberTopics(m, md) {
			t := md.Topics[name]
			topics[t.ID] = assignTopic{name: name, partitions: int32(len(t.Groups))}
		}
	}
	return topics
}

// topicsHash changes when a subscribed topic appears, goes, is
// recreated (new id) or gains partitions: each is a new group epoch. It
// is stored as the group's MetadataHash, so a new coordinator sees what
// changed while there was none.
func topicsHash(topics map[[16]byte]assignTopic) int64 {
	h := fnv.New64a()
	for _, id := range sortedTopicIDs(topics) {
		fmt.Fprintf(h, "%s/%x/%d;", topics[id].name, id, topics[id].partitions)
	}
	return int64(h.Sum64())
}

// topicsChanged reports whether the subscribed topics differ from those
// of the last target assignment.
func (g *group) topicsChanged() bool {
	return topicsHash(g.subscribedTopicInfo(g.co.node.Metadata())) != g.consumer.topicsHash
}

// preferredAssignor is ConsumerGroup.computePreferredServerAssignor: the
// one most members ask for, else the default.
func (cg *consumerGroup) preferredAssignor() string {
	count := map[string]int{}
	for _, m := range cg.members {
		// A name from the log (another coordinator's) may not be ours.
		if m.assignor != "" && assignors[m.assignor] != nil {
			count[m.assignor]++
		}
	}
	best := defaultAssignor
	for name, n := range count {
		if n > count[best] || (n == count[best] && name < best) {
			best = name
		}
	}
	return best
}

// bumpConsumerEpoch starts a new group epoch and computes its target
// assignment at once (Kafka does it on the next heartbeat; the result is
// the same, and the group is never left Assigning).
func (g *group) bumpConsumerEpoch() {
	cg := &g.consumer
	cg.epoch++
	md := g.co.node.Metadata()
	topics := g.subscribedTopicInfo(md)
	members := make([]assignMember, 0, len(cg.members))
	for _, id := range cg.sortedIDs() {
		m := cg.members[id]
		am := assignMember{id: id, topics: map[[16]byte]bool{}, current: cg.target[id]}
		for _, name := range memberTopics(m, md) {
			am.topics[md.Topics[name].ID] = true
		}
		members = append(members, am)
	}
	cg.assignor = cg.preferredAssignor()
	cg.target = assignors[cg.assignor](members, topics)
	cg.assignEpoch = cg.epoch
	cg.topicsHash = topicsHash(topics)
}

// reconcile moves m towards its target; owned are the partitions its
// heartbeat reports, nil if it did not report them.
func (g *group) reconcile(m *consumerMember, owned partSet) {
	cg := &g.consumer
	if m.reconciledTo(cg.assignEpoch) {
		return
	}
	if m.state == memberUnrevoked && (owned == nil || intersects(owned, m.revoking)) {
		return // still holds what it must give up
	}
	g.nextAssignment(m)
}

// nextAssignment is CurrentAssignmentBuilder.computeNextAssignment.
func (g *group) nextAssignment(m *consumerMember) {
	cg := &g.consumer
	target := cg.target[m.id]
	keep, revoke, add := partSet{}, partSet{}, partSet{}
	for tp := range m.assigned {
		if _, ok := target[tp]; ok {
			keep[tp] = struct{}{}
		} else {
			revoke[tp] = struct{}{}
		}
	}
	if len(revoke) > 0 {
		// Revoke first, at the current epoch.
		m.state = memberUnrevoked
		cg.setOwned(m, keep, revoke)
		g.startRevokeTimer(m)
		return
	}
	unreleased := false
	for tp := range target {
		if _, ok := keep[tp]; ok {
			continue
		}
		if o := cg.owners[tp]; o != "" && o != m.id {
			unreleased = true
			continue
		}
		add[tp] = struct{}{}
	}
	for tp := range add {
		keep[tp] = struct{}{}
	}
	m.state = memberStable
	if unreleased {
		m.state = memberUnreleased
	}
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
		m.revokeTimer = nil
	}
	cg.setOwned(m, keep, nil)
	cg.setEpoch(m, cg.assignEpoch)
}

// startRevokeTimer fences m if it has not revoked within its rebalance
// timeout, so a stuck member cannot hold partitions others wait for.
func (g *group) startRevokeTimer(m *consumerMember) {
	if m.revokeTimer != nil {
		m.revokeTimer.Stop()
	}
	d := m.rebalanceTimeout
	if d <= 0 {
		d = g.co.cfg.ConsumerSessionTimeout
	}
	m.revokeTimer = g.after(d, &consumerRevokeExpired{id: m.id, epoch: m.epoch})
}

func intersects(a, b partSet) bool {
	if len(a) > len(b) {
		a, b = b, a
	}
	for tp := range a {
		if _, ok := b[tp]; ok {
			return true
		}
	}
	return false
}

func samePartSet(a, b partSet) bool {
	if len(a) != len(b) {
		return false
	}
	for tp := range a {
		if _, ok := b[tp]; !ok {
			return false
		}
	}
	return true
}

func subsetOf(a, b partSet) bool {
	for tp := range a {
		if _, ok := b[tp]; !ok {
			return false
		}
	}
	return true
}
