package groups

import (
	"crypto/rand"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Protocol choice and JoinGroup answers of the classic protocol.

// supportsProtocols: Kafka accepts a join whose protocol type is the
// group's and which shares a protocol with every current member.
func (g *group) supportsProtocols(protocolType string, protocols []kmsg.JoinGroupRequestProtocol) bool {
	cg := &g.classic
	if len(cg.members) == 0 {
		return protocolType != "" && len(protocols) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range protocols {
		if g.supportCount(p.Name) == len(cg.members) {
			return true
		}
	}
	return false
}

func (g *group) supportCount(name string) int {
	n := 0
	for _, m := range g.classic.members {
		if hasProtocol(m.protocols, name) {
			n++
		}
	}
	return n
}

func hasProtocol(ps []kmsg.JoinGroupRequestProtocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// selectProtocol picks, among the protocols every member supports, the
// one most members prefer: each votes for its first supported candidate.
func (g *group) selectProtocol() string {
	cg := &g.classic
	votes := map[string]int{}
	for _, m := range cg.members {
		for _, p := range m.protocols {
			if g.supportCount(p.Name) == len(cg.members) {
				votes[p.Name]++
				break
			}
		}
	}
	names := make([]string, 0, len(votes))
	for n := range votes {
		names = append(names, n)
	}
	sort.Strings(names)
	best := ""
	for _, n := range names {
		if best == "" || votes[n] > votes[best] {
			best = n
		}
	}
	return best
}

// joinResult is the answer of the current generation to member id.
func (g *group) joinResult(req *kmsg.JoinGroupRequest, id string, withMembers, skipAssignment bool) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation, resp.LeaderID, resp.MemberID = g.generation, g.leader, id
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType, resp.Protocol = &pt, &p
	resp.SkipAssignment = skipAssignment
	if withMembers {
		for _, mid := range g.classic.sortedIDs() {
			m := g.classic.members[mid]
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.ProtocolMetadata = mid, m.metadataFor(g.protocol)
			if m.instanceID != "" {
				inst := m.instanceID
				rm.InstanceID = &inst
			}
			resp.Members = append(resp.Members, rm)
		}
	}
	return resp
}

func joinError(req *kmsg.JoinGroupRequest, memberID string, err *kerr.Error) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode, resp.Generation, resp.MemberID = err.Code, -1, memberID
	return resp
}

// newMemberID is Kafka's clientId-UUID.
func newMemberID(clientID string) string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", clientID, u[0:4], u[4:6], u[6:8], u[8:10], u[10:])
}

// consumerTopics decodes the topics of "consumer" protocol members.
func consumerTopics(protocolType, protocol string, members map[string]*classicMember) map[string]bool {
	if protocolType != "consumer" || protocol == "" {
		return nil
	}
	topics := map[string]bool{}
	for _, m := range members {
		var meta kmsg.ConsumerMemberMetadata
		if err := meta.ReadFrom(m.metadataFor(protocol)); err != nil {
			return nil
		}
		for _, t := range meta.Topics {
			topics[t] = true
		}
	}
	return topics
}
