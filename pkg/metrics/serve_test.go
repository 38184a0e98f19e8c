package metrics

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fdbhook/fdbhook/pkg/runstate"
)

// TestServe: /metrics over TCP on localhost and over a unix socket, and a
// clean shutdown when the context ends.
func TestServe(t *testing.T) {
	src := Source{State: world(t), RunDir: runstate.Dir(t.TempDir()), Version: "1.2.3"}
	sock := filepath.Join(t.TempDir(), "metrics.sock")
	os.WriteFile(sock, nil, 0o644) // a stale file from an earlier run is replaced
	for _, addr := range []string{"127.0.0.1:0", "unix:" + sock} {
		l, err := Listen(addr)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- Serve(ctx, l, Handler(src)) }()
		client := &http.Client{Timeout: 5 * time.Second}
		url := "http://" + l.Addr().String() + "/metrics"
		if l.Addr().Network() == "unix" {
			client.Transport = &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}}
			url = "http://fdbhook/metrics"
		}
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `fdbhook_bridge_exists{bridge="br0"} 1`) {
			t.Errorf("%s: %d\n%s", addr, resp.StatusCode, body)
		}
		if resp, err := client.Get(strings.TrimSuffix(url, "metrics") + "other"); err == nil {
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s: /other answered %d, want 404", addr, resp.StatusCode)
			}
			resp.Body.Close()
		}
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("%s: Serve after cancel: %v", addr, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Serve did not return after cancel", addr)
		}
	}
	if _, err := Listen("unix:"); err == nil {
		t.Error("Listen(\"unix:\") succeeded")
	}
}
