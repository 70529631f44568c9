package main

import (
	"cellbench/internal/stats"
	"cellbench/internal/testkit"

	"fmt"
	"net/http"
	"testing"
	"time"
)

// pushToAck pushes one new version and waits until every router has acked
// it. It returns, per router, the time from just before the PUT to the
// acked_at the control plane recorded.
func pushToAck(t testing.TB, cp *testCP, version string, ids []string) []time.Duration {
	t.Helper()
	doc := demoDoc(t, version)
	pushed := time.Now()
	if resp := cp.put(t, "", doc); resp.status != http.StatusAccepted {
		t.Fatalf("PUT %s = %d %v", version, resp.status, resp.body)
	}
	var st statusBody
	testkit.WaitFor(t, 10*time.Second, fmt.Sprintf("%d routers to ack %s", len(ids), version), func() bool {
		st = cp.status(t)
		return st.ackedBy(version, ids...)
	})
	latencies := make([]time.Duration, 0, len(ids))
	for _, id := range ids {
		n, _ := st.node(id)
		latencies = append(latencies, n.AckedAt.Sub(pushed))
	}
	return latencies
}

func TestFiftyRoutersConvergeOnEveryPush(t *testing.T) {
	cp := startCP(t, cpOptions{})
	ids := nodeIDs("edge", 50)
	routers := make([]*fakeRouter, len(ids))
	for i, id := range ids {
		routers[i] = startRouter(t, cp, id, "", nil)
	}
	testkit.WaitFor(t, 10*time.Second, "50 routers to ack v1", func() bool { return cp.status(t).ackedBy("v1", ids...) })

	var all []time.Duration
	const pushes = 5
	for i := range pushes {
		all = append(all, pushToAck(t, cp, fmt.Sprintf("v%d", i+2), ids)...)
	}
	for _, r := range routers {
		if v := r.currentVersion(); v != fmt.Sprintf("v%d", pushes+1) {
			t.Fatalf("%s serves %s", r.nodeID, v)
		}
	}
	sortDurations(all)
	t.Logf("push-to-ack, 50 routers x %d pushes (this run's build flags apply; see BenchmarkPushToAck): p50 %v, max %v",
		pushes, stats.Percentile(all, 0.5).Round(time.Microsecond), all[len(all)-1].Round(time.Microsecond))
}

// BenchmarkPushToAck measures from PUT /config to the acks of 1 and of 50
// in-process routers (each validating the document as a router does).
// Reported: p50 and max over every router's ack, and the time until the
// last router acked (convergence), per push.
//
//	go test -run '^$' -bench PushToAck -benchtime 50x ./controlplane/
func BenchmarkPushToAck(b *testing.B) {
	for _, routers := range []int{1, 50} {
		b.Run(fmt.Sprintf("routers=%d", routers), func(b *testing.B) {
			cp := startCP(b, cpOptions{})
			ids := nodeIDs("edge", routers)
			for _, id := range ids {
				startRouter(b, cp, id, "", nil)
			}
			testkit.WaitFor(b, 10*time.Second, "routers to ack v1", func() bool { return cp.status(b).ackedBy("v1", ids...) })
			var acks, converged []time.Duration
			b.ResetTimer()
			for i := range b.N {
				lat := pushToAck(b, cp, fmt.Sprintf("bench-%d", i), ids)
				sortDurations(lat)
				acks = append(acks, lat...)
				converged = append(converged, lat[len(lat)-1])
			}
			b.StopTimer()
			sortDurations(acks)
			sortDurations(converged)
			b.ReportMetric(ms(stats.Percentile(acks, 0.5)), "p50-ack-ms")
			b.ReportMetric(ms(acks[len(acks)-1]), "max-ack-ms")
			b.ReportMetric(ms(stats.Percentile(converged, 0.5)), "p50-converged-ms")
			b.ReportMetric(ms(converged[len(converged)-1]), "max-converged-ms")
		})
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
