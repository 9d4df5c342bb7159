package actors

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// interBroker sends the requests one broker makes of another over the
// Kafka protocol, as Kafka's brokers do: transaction markers to the
// leaders of a transaction's partitions (WriteTxnMarkers) and a leader's
// check with the transaction coordinator (AddPartitionsToTxn v4+,
// VerifyOnly). franz-go's client does the framing and the version
// negotiation; one client per peer, made on first use, sends to that
// peer's advertised address directly (no metadata routing).
type interBroker struct {
	b      *Broker
	mu     sync.Mutex
	peers  map[int32]*peerClient
	closed bool
}

type peerClient struct {
	addr string
	cl   *kgo.Client
}

// interBrokerTimeout bounds one request to a peer; a peer that does not
// answer in time is tried again by the caller (markers) or answered with
// a retriable error (verification).
const interBrokerTimeout = 10 * time.Second

func newInterBroker(b *Broker) *interBroker {
	return &interBroker{b: b, peers: map[int32]*peerClient{}}
}

// request sends req to node and waits for its response. It blocks:
// callers run it off any actor.
func (ib *interBroker) request(node int32, req kmsg.Request) (kmsg.Response, error) {
	cl, err := ib.client(node)
	if err != nil {
		return nil, err
	}
	seeds := cl.SeedBrokers()
	if len(seeds) == 0 {
		return nil, fmt.Errorf("node %d: no address", node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), interBrokerTimeout)
	defer cancel()
	return seeds[0].Request(ctx, req)
}

func (ib *interBroker) client(node int32) (*kgo.Client, error) {
	host, port, ok := ib.b.brokerAddr(node)
	if !ok {
		return nil, fmt.Errorf("node %d has no Kafka address", node)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(int(port)))
	ib.mu.Lock()
	defer ib.mu.Unlock()
	if ib.closed {
		return nil, fmt.Errorf("node stopping")
	}
	if pc := ib.peers[node]; pc != nil && pc.addr == addr {
		return pc.cl, nil
	} else if pc != nil {
		pc.cl.Close()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(addr),
		kgo.ClientID(fmt.Sprintf("chronik-actor-broker-%d", ib.b.cfg.NodeID)),
		kgo.DialTimeout(5*time.Second),
		kgo.RequestRetries(0),
	)
	if err != nil {
		return nil, err
	}
	ib.peers[node] = &peerClient{addr: addr, cl: cl}
	return cl, nil
}

// close closes every peer client; later requests fail.
func (ib *interBroker) close() {
	ib.mu.Lock()
	peers := ib.peers
	ib.peers, ib.closed = map[int32]*peerClient{}, true
	ib.mu.Unlock()
	for _, pc := range peers {
		pc.cl.Close()
	}
}
