package syncer

import (
	"strings"
	"testing"

	"github.com/mesh-sync/mesh/remote"
)

func TestMetricsPrometheus(t *testing.T) {
	var m Metrics
	m.Rounds.Add(3)
	m.received("DEV-B", 5, 1000)
	m.received("DEV-A", 2, 10)
	m.received("DEV-B", 1, 24)
	var dev remote.DeviceID
	dev[0] = 7
	m.sent(dev, 100)
	m.sent(dev, 23)
	var b strings.Builder
	m.WritePrometheus(&b, 2)
	out := b.String()
	for _, want := range []string{
		"# TYPE mesh_sync_rounds_total counter\nmesh_sync_rounds_total 3\n",
		"mesh_objects_fetched_total 8\n",
		"mesh_received_bytes_total{device=\"DEV-A\"} 10\nmesh_received_bytes_total{device=\"DEV-B\"} 1024\n",
		"# TYPE mesh_sent_bytes_total counter\nmesh_sent_bytes_total{device=\"" + dev.String() + "\"} 123\n",
		"# TYPE mesh_conflicts_open gauge\nmesh_conflicts_open 2\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
}
