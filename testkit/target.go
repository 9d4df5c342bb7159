package testkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronik-actor/chronik-actor/testkit/wait"
)

// TargetEnv names the environment variable that picks the broker the
// checks run against. "kfake" runs them against franz-go's fake broker:
// the checks are then known to be right independently of chronik-actor, so
// a failure against chronik-actor points at the broker, not at the check.
// Anything else, including unset, means chronik-actor.
const TargetEnv = "CHRONIK_TEST_TARGET"

// Kind says which broker implementation a Target or Process runs.
type Kind string

const (
	KindChronik Kind = "chronik" // this project's broker
	KindKfake   Kind = "kfake"   // github.com/twmb/franz-go/pkg/kfake
)

// TargetKind reads TargetEnv.
func TargetKind() Kind {
	if os.Getenv(TargetEnv) == string(KindKfake) {
		return KindKfake
	}
	return KindChronik
}

// Target is a running single-node broker that a check talks to over TCP,
// whichever implementation it is; the check bodies only see Addr.
type Target struct {
	Kind Kind
	addr string
}

// Addr is the host:port clients bootstrap from.
func (tg *Target) Addr() string { return tg.addr }

// StartTarget starts the broker TargetKind selects, in this process, and
// stops it when the test ends.
func StartTarget(t testing.TB) *Target {
	t.Helper()
	if TargetKind() == KindKfake {
		// Auto-creation is on because chronik-actor's default has it on and
		// kcat relies on it.
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
		if err != nil {
			t.Fatalf("start kfake: %v", err)
		}
		t.Cleanup(c.Close)
		return &Target{Kind: KindKfake, addr: c.ListenAddrs()[0]}
	}
	b := StartBroker(t)
	return &Target{Kind: KindChronik, addr: b.Addr()}
}

// SkipOnKfake skips a check whose expectation is chronik-actor's (or the
// Java broker's) behaviour where kfake is known to answer otherwise.
//
// It is the one place a check skips, and only in the validation mode
// CHRONIK_TEST_TARGET=kfake, which runs the checks against kfake to tell a
// wrong check from a broken broker. `make test` (and CI) always targets
// chronik-actor, where nothing skips.
func (tg *Target) SkipOnKfake(t testing.TB, why string) {
	t.Helper()
	skipOnKfake(t, tg.Kind, why)
}

// SkipUnlessChronik is SkipOnKfake for checks that run the broker binary
// (StartProcess) rather than a Target.
func SkipUnlessChronik(t testing.TB, why string) {
	t.Helper()
	skipOnKfake(t, TargetKind(), why)
}

func skipOnKfake(t testing.TB, k Kind, why string) {
	t.Helper()
	if k == KindKfake {
		// Only with CHRONIK_TEST_TARGET=kfake, the mode that checks the
		// checks against franz-go's kfake: a check of behaviour kfake
		// lacks (replication, storage, KIP-848) has nothing to judge
		// there. make test runs every check against chronik-actor.
		t.Skipf("kfake differs here (%s); checked against chronik-actor only", why)
	}
}

// NewClient returns a kgo client bootstrapped from addr (one host:port, or
// several joined by commas), closed when the test ends.
func NewClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(addr, ",")...)}, opts...)...)
	if err != nil {
		t.Fatalf("kgo client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates a topic with replication factor 1 and waits until
// every partition has a leader, so the first produce does not race the
// topic's creation. A freshly started broker may still be electing its
// controller, hence the retries on retriable errors.
func CreateTopic(t testing.TB, addr, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	adm := kadm.NewClient(NewClient(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A non-retriable error ends the wait at once: retrying cannot help.
	var refused error
	err := wait.Until(ctx, 30*time.Second, func() error {
		resp, err := adm.CreateTopic(ctx, partitions, 1, configs, topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		if !kerr.IsRetriable(err) && !errors.Is(err, kerr.NotController) {
			refused = err
			return nil
		}
		return err
	})
	if refused != nil {
		err = refused
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	wait.For(t, 30*time.Second, func() error {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		td, ok := md.Topics[topic]
		if !ok || td.Err != nil {
			return fmt.Errorf("topic %s not in metadata yet (%v)", topic, td.Err)
		}
		if int32(len(td.Partitions)) != partitions {
			return fmt.Errorf("topic %s has %d partitions, want %d", topic, len(td.Partitions), partitions)
		}
		for _, p := range td.Partitions {
			if p.Leader < 0 || p.Err != nil {
				return fmt.Errorf("partition %d: leader %d, err %v", p.Partition, p.Leader, p.Err)
			}
		}
		return nil
	})
}
