package main

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/erasure-project/erasure/internal/app"
)

// A process without the web API serves /metrics and /healthz on the
// metrics address, for probes and scraping.
func TestMetricsAddrForConsumerRoles(t *testing.T) {
	p := startPipelineWith(t, 0, func(c *app.Config) { c.MetricsAddr = "127.0.0.1:0" }, []string{app.RoleConsumer + "voice", app.RoleAggregator})
	for path, want := range map[string]string{"/healthz": "ok", "/metrics": "go_goroutines"} {
		res, err := http.Get(p.app.MetricsURL() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, res.StatusCode, want)
		}
	}
}

// The web API keeps /metrics off the port users reach; it is served on the
// metrics address only.
func TestMetricsNotOnUIPort(t *testing.T) {
	p := startPipelineWith(t, 0, func(c *app.Config) { c.MetricsAddr = "127.0.0.1:0" }, []string{app.RoleWebAPI, app.RoleAggregator})
	res, err := http.Get(p.app.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode == http.StatusOK || strings.Contains(string(body), "go_goroutines") {
		t.Errorf("GET /metrics on the UI port: %d, want no metrics", res.StatusCode)
	}
	res, err = http.Get(p.app.MetricsURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("GET /metrics on the metrics address: %d", res.StatusCode)
	}
}
