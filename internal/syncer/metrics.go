package syncer

import (
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/mesh-sync/mesh/remote"
)

// Metrics counts what a daemon did since it started, for /metrics.
type Metrics struct {
	Rounds         atomic.Int64
	RoundErrors    atomic.Int64
	ObjectsFetched atomic.Int64
	FetchFailures  atomic.Int64
	HeadsRefused   atomic.Int64

	mu       sync.Mutex
	bytesIn  map[string]int64 // by device
	bytesOut map[string]int64 // by device
}

// received adds what a fetch from device brought.
func (m *Metrics) received(device string, objects, bytes int64) {
	m.ObjectsFetched.Add(objects)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bytesIn == nil {
		m.bytesIn = map[string]int64{}
	}
	m.bytesIn[device] += bytes
}

// sent adds what was sent to a device over a connection it opened.
func (m *Metrics) sent(peer remote.DeviceID, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bytesOut == nil {
		m.bytesOut = map[string]int64{}
	}
	m.bytesOut[peer.String()] += bytes
}

// WritePrometheus writes the counters in Prometheus's text format, with
// conflicts (the conflicts open now) as a gauge.
func (m *Metrics) WritePrometheus(w io.Writer, conflicts int) {
	counter := func(name, help string, v int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	counter("mesh_sync_rounds_total", "Sync rounds the daemon ran.", m.Rounds.Load())
	counter("mesh_sync_round_errors_total", "Sync rounds that failed.", m.RoundErrors.Load())
	counter("mesh_objects_fetched_total", "Objects fetched from other devices.", m.ObjectsFetched.Load())
	counter("mesh_fetch_failures_total", "Fetches from a device that failed.", m.FetchFailures.Load())
	counter("mesh_heads_refused_total", "Heads refused because their history did not validate.", m.HeadsRefused.Load())
	byDevice := func(name, help string, v map[string]int64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", name, help, name)
		devs := make([]string, 0, len(v))
		for d := range v {
			devs = append(devs, d)
		}
		sort.Strings(devs)
		for _, d := range devs {
			fmt.Fprintf(w, "%s{device=%q} %d\n", name, d, v[d])
		}
	}
	m.mu.Lock()
	byDevice("mesh_received_bytes_total", "Bytes of objects fetched from each device.", m.bytesIn)
	byDevice("mesh_sent_bytes_total", "Bytes sent to each device over the connections it opened to this one (TLS records).", m.bytesOut)
	m.mu.Unlock()
	fmt.Fprintf(w, "# HELP mesh_conflicts_open Conflicts open at HEAD.\n# TYPE mesh_conflicts_open gauge\nmesh_conflicts_open %d\n", conflicts)
}
