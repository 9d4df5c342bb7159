package actors

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/chronik-actor/chronik-actor/protocol"
)

// Every API key protocol's version table advertises has a handler: a gap
// would otherwise show only when a client sends that request (handle
// closes the connection).
func TestEveryAdvertisedAPIHasAHandler(t *testing.T) {
	keys := protocol.ApiVersionsKeys()
	if len(keys) == 0 {
		t.Fatal("protocol's version table is empty")
	}
	for _, k := range keys {
		if handlers[kmsg.Key(k.ApiKey)] == nil {
			t.Errorf("API key %d (%s) is advertised but has no handler", k.ApiKey, kmsg.NameForKey(k.ApiKey))
		}
	}
}
