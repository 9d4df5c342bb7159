package actors

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronik-actor/chronik-actor/cluster"
)

// /v1/faults is not there unless the node runs with [testing] faults =
// true (TestFaults): 404 for GET and PUT alike.
func TestAdminFaultsOffByDefault(t *testing.T) {
	b := startAdminBroker(t, false)
	base := "http://" + b.AdminAddr() + "/v1/faults"
	if code, _ := httpGet(t, base); code != http.StatusNotFound {
		t.Fatalf("GET /v1/faults without TestFaults: %d, want 404", code)
	}
	if code, _ := httpPut(t, base, `{"cut":[2]}`); code != http.StatusNotFound {
		t.Fatalf("PUT /v1/faults without TestFaults: %d, want 404", code)
	}
}

// With TestFaults, PUT sets the faults and answers them, GET reads them
// back, a bad body is refused with 400 and changes nothing, and the
// transport's hook is the settings' Fate.
func TestAdminFaultsSetAndRead(t *testing.T) {
	b := startAdminBroker(t, true)
	base := "http://" + b.AdminAddr() + "/v1/faults"
	if code, body := httpGet(t, base); code != http.StatusOK || !strings.Contains(body, `"cut":[]`) || !strings.Contains(body, `"delay":"0s"`) {
		t.Fatalf("GET before any PUT: %d %s", code, body)
	}
	code, body := httpPut(t, base, `{"cut":[2,3],"drop":0.25,"delay":"40ms","seed":5}`)
	if code != http.StatusOK || !strings.Contains(body, `"cut":[2,3]`) || !strings.Contains(body, `"drop":0.25`) || !strings.Contains(body, `"delay":"40ms"`) {
		t.Fatalf("PUT: %d %s", code, body)
	}
	for _, bad := range []string{`{"drop":2}`, `{"delay":"soon"}`, `{"cut":"all"}`, `{"partition":[1]}`, `not json`} {
		if code, body := httpPut(t, base, bad); code != http.StatusBadRequest {
			t.Fatalf("PUT %s: %d %s, want 400", bad, code, body)
		}
	}
	if code, body := httpGet(t, base); code != http.StatusOK || !strings.Contains(body, `"cut":[2,3]`) || !strings.Contains(body, `"delay":"40ms"`) {
		t.Fatalf("GET after refused PUTs: %d %s", code, body)
	}
	if f := b.netFault()(cluster.Outbound{From: 1, To: 2, Kind: cluster.KindKeepalive}); !f.Drop {
		t.Fatalf("a keepalive to a cut peer: %+v", f)
	}
}

func startAdminBroker(t *testing.T, faults bool) *Broker {
	t.Helper()
	cfg := cluster.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.KafkaAddr = "127.0.0.1:0"
	cfg.AdminAddr = "127.0.0.1:0"
	cfg.TestFaults = faults
	b, err := StartBroker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func httpPut(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("PUT %s: %v", url, err)
	}
	return resp.StatusCode, string(out)
}
