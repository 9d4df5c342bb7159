package actors

import (
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/raftactor"
)

// Incremental fetch sessions (KIP-227): a client that fetches many
// partitions sends them once; later fetches name only what changed, and
// answers carry only partitions with news. The cache is bounded; when it is
// full the least recently used idle session is evicted, and a client whose
// session is gone gets FETCH_SESSION_ID_NOT_FOUND and starts a new one.
const (
	maxFetchSessions   = 1000
	fetchSessionIdle   = 2 * time.Minute
	fetchSessionNoneID = 0
)

type fetchSession struct {
	id       int32
	mu       sync.Mutex // held by the fetch using the session
	epoch    int32      // the epoch the next request must carry
	targets  []*fetchTarget
	lastUsed time.Time
}

type fetchSessions struct {
	mu sync.Mutex
	m  map[int32]*fetchSession
}

func newFetchSessions() *fetchSessions { return &fetchSessions{m: map[int32]*fetchSession{}} }

type sessionKey struct {
	topic     string
	topicID   [16]byte
	partition int32
}

// resolve applies a v7+ fetch request to the session cache and returns the
// session (nil when none is kept), the partitions to read, whether the
// response must list all of them, or an error code.
func (s *fetchSessions) resolve(req *kmsg.FetchRequest, md *raftactor.Metadata) (*fetchSession, []*fetchTarget, bool, int16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if req.SessionID != fetchSessionNoneID {
		if req.SessionEpoch == -1 || req.SessionEpoch == 0 {
			// -1 closes the session, 0 replaces it with a new one; both
			// are full fetches of what this request lists.
			delete(s.m, req.SessionID)
		} else {
			sess := s.m[req.SessionID]
			if sess == nil {
				return nil, nil, false, kerr.FetchSessionIDNotFound.Code
			}
			// The session's fetch holds sess.mu until its answer is built,
			// so a client waiting for that answer cannot be the one asking
			// now: this is another client (or a pipelined request) naming
			// the session. Waiting here would block this connection and,
			// through s.mu, every session fetch of the node for up to the
			// other fetch's MaxWaitMs.
			if !sess.mu.TryLock() {
				return nil, nil, false, kerr.InvalidFetchSessionEpoch.Code
			}
			defer sess.mu.Unlock()
			if req.SessionEpoch != sess.epoch {
				return nil, nil, false, kerr.InvalidFetchSessionEpoch.Code
			}
			sess.update(req, md)
			sess.epoch = nextEpoch(sess.epoch)
			sess.lastUsed = now
			// A copy: the next request may update the session while this
			// fetch's goroutine has yet to start.
			return sess, append([]*fetchTarget(nil), sess.targets...), false, 0
		}
	}
	targets := requestTargetsFrom(req, md)
	if req.SessionEpoch == -1 {
		return nil, targets, true, 0
	}
	if !s.makeRoom(now) {
		return nil, targets, true, 0 // no session: the client goes on with full fetches
	}
	sess := &fetchSession{id: s.newID(), epoch: 1, targets: targets, lastUsed: now}
	s.m[sess.id] = sess
	return sess, targets, true, 0
}

// newID picks an unused random session id, as Kafka does. Sequential ids
// restart at 1 with the node, and clients keep their session id across a
// reconnect: a client back from a restart would then name (close, or
// fetch through) another client's new session.
func (s *fetchSessions) newID() int32 {
	for {
		id := rand.Int32()
		if _, taken := s.m[id]; id != fetchSessionNoneID && !taken {
			return id
		}
	}
}

// makeRoom evicts the least recently used session idle for a while when
// the cache is full.
func (s *fetchSessions) makeRoom(now time.Time) bool {
	if len(s.m) < maxFetchSessions {
		return true
	}
	var oldest *fetchSession
	for _, sess := range s.m {
		if oldest == nil || sess.lastUsed.Before(oldest.lastUsed) {
			oldest = sess
		}
	}
	if oldest == nil || now.Sub(oldest.lastUsed) < fetchSessionIdle {
		return false
	}
	delete(s.m, oldest.id)
	return true
}

// update adds or changes the partitions the request lists and drops the
// forgotten ones.
func (sess *fetchSession) update(req *kmsg.FetchRequest, md *raftactor.Metadata) {
	idx := make(map[sessionKey]int, len(sess.targets))
	for i, tg := range sess.targets {
		idx[sessionKey{tg.topic, tg.topicID, tg.partition}] = i
	}
	for _, tg := range requestTargetsFrom(req, md) {
		k := sessionKey{tg.topic, tg.topicID, tg.partition}
		if i, ok := idx[k]; ok {
			old := sess.targets[i]
			old.offset, old.maxBytes, old.leaderEpoch = tg.offset, tg.maxBytes, tg.leaderEpoch
			continue
		}
		idx[k] = len(sess.targets)
		sess.targets = append(sess.targets, tg)
	}
	if len(req.ForgottenTopics) == 0 {
		return
	}
	forget := map[sessionKey]bool{}
	for _, ft := range req.ForgottenTopics {
		name := ft.Topic
		if req.Version >= 13 {
			name = ""
			if t := md.TopicByID(ft.TopicID); t != nil {
				name = t.Name
			}
		}
		for _, p := range ft.Partitions {
			forget[sessionKey{name, ft.TopicID, p}] = true
		}
	}
	kept := sess.targets[:0]
	for _, tg := range sess.targets {
		if !forget[sessionKey{tg.topic, tg.topicID, tg.partition}] {
			kept = append(kept, tg)
		}
	}
	sess.targets = kept
}

func nextEpoch(e int32) int32 {
	if e == 1<<31-1 {
		return 1
	}
	return e + 1
}
