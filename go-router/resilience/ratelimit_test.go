package resilience

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"cellbench/config"
)

func TestRateLimiterBurstThenRefuse(t *testing.T) {
	for _, per := range []string{config.PerRoutingKey, config.PerPlacement} {
		l := NewRateLimiter(config.RateLimit{RequestsPerSecond: 0.5, Burst: 3, Per: per})
		now := time.Now()
		for i := range 3 {
			if ok, _ := l.Allow("a", now); !ok {
				t.Fatalf("%s: request %d within burst refused", per, i)
			}
		}
		ok, after := l.Allow("a", now)
		if ok || after != 2 {
			t.Fatalf("%s: over burst: ok=%v Retry-After=%d, want refused with 2 s at 0.5 rps", per, ok, after)
		}
		// Another key has its own bucket only with per=routing_key.
		ok, _ = l.Allow("b", now)
		if ok != (per == config.PerRoutingKey) {
			t.Fatalf("%s: other key allowed=%v", per, ok)
		}
		if ok, _ := l.Allow("a", now.Add(2*time.Second)); !ok {
			t.Fatalf("%s: refill after 2 s refused", per)
		}
		l.Close()
	}
}

func TestRateLimiterMemoryIsBounded(t *testing.T) {
	l := NewRateLimiter(config.RateLimit{RequestsPerSecond: 100, Burst: 10, Per: config.PerRoutingKey})
	defer l.Close()
	now := time.Now()
	const flood = rateLimitShards*maxKeysPerShard + 5000
	for i := range flood {
		l.Allow("key-"+strconv.Itoa(i), now)
	}
	if n := l.keys(); n > rateLimitShards*maxKeysPerShard {
		t.Fatalf("%d keys held after %d distinct keys, cap is %d", n, flood, rateLimitShards*maxKeysPerShard)
	}
	// Keys idle for longer than a full refill are swept.
	l.Allow("fresh", now.Add(l.idleAfter))
	l.sweep(now.Add(l.idleAfter + time.Millisecond))
	if n := l.keys(); n != 1 {
		t.Fatalf("%d keys after sweeping idle ones, want 1 (the fresh key)", n)
	}
}

func TestRateLimiterLongKeysAreStoredHashed(t *testing.T) {
	l := NewRateLimiter(config.RateLimit{RequestsPerSecond: 1, Burst: 1, Per: config.PerRoutingKey})
	defer l.Close()
	now := time.Now()
	long := strings.Repeat("k", 60<<10)
	if ok, _ := l.Allow(long, now); !ok {
		t.Fatal("first request refused")
	}
	if ok, _ := l.Allow(long, now); ok {
		t.Fatal("a long key lost its bucket")
	}
	if ok, _ := l.Allow(long[:len(long)-1]+"x", now); !ok {
		t.Fatal("two different long keys share a bucket")
	}
	for i := range l.shards {
		for k := range l.shards[i].keys {
			if len(k) > maxStoredKeyBytes {
				t.Fatalf("stored a %d-byte key", len(k))
			}
		}
	}
}
