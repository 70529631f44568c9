package resilience

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"cellbench/config"
)

// Bounds of the per-routing-key limiter state.
const (
	rateLimitShards   = 64
	maxKeysPerShard   = 1024 // 65 536 keys in all
	rateLimitSweepGap = 10 * time.Second
	// maxStoredKeyBytes bounds the memory of one key: a longer routing key
	// (it can be close to the 64 KiB head limit) is stored as its hash.
	maxStoredKeyBytes = config.MaxRouteKeyBytes
)

// RateLimiter is the token bucket of one placement (contract section 2,
// rule 3), either one bucket for the placement or one per routing key.
//
// Per-key memory is bounded two ways. A periodic sweep drops keys idle for
// longer than a full refill: their bucket is full again, so dropping one is
// indistinguishable from keeping it. A hard cap per shard bounds a flood of
// distinct keys between sweeps: a full shard evicts an arbitrary key (map
// iteration order), which at worst hands that key a fresh burst. Hand-rolled
// instead of an LRU package because only these two rules are needed and the
// project's allowed dependencies have no cache.
type RateLimiter struct {
	settings config.RateLimit
	// single is used when per is "placement".
	single *rate.Limiter
	shards *[rateLimitShards]keyShard
	seed   maphash.Seed
	// idleAfter is the refill time of an empty bucket.
	idleAfter time.Duration
	stop      chan struct{}
	stopOnce  sync.Once
}

type keyShard struct {
	mu   sync.Mutex
	keys map[string]*keyBucket
}

type keyBucket struct {
	limiter  *rate.Limiter
	lastSeen atomic.Int64 // unix nanoseconds
}

// NewRateLimiter starts a limiter (and, per routing key, its sweeper).
func NewRateLimiter(settings config.RateLimit) *RateLimiter {
	l := &RateLimiter{settings: settings}
	if settings.Per == config.PerPlacement {
		l.single = rate.NewLimiter(rate.Limit(settings.RequestsPerSecond), int(settings.Burst))
		return l
	}
	l.shards = new([rateLimitShards]keyShard)
	for i := range l.shards {
		l.shards[i].keys = make(map[string]*keyBucket)
	}
	l.seed = maphash.MakeSeed()
	refill := float64(settings.Burst) / settings.RequestsPerSecond
	l.idleAfter = time.Duration(math.Ceil(refill*float64(time.Second))) + time.Second
	l.stop = make(chan struct{})
	go l.sweepLoop()
	return l
}

// Settings are the settings the limiter was made with.
func (l *RateLimiter) Settings() config.RateLimit { return l.settings }

// Allow takes one token for key at now. When refused it returns the whole
// seconds until a token is available (at least 1) for Retry-After.
func (l *RateLimiter) Allow(key string, now time.Time) (ok bool, retryAfter int) {
	lim := l.single
	if lim == nil {
		lim = l.bucket(key, now)
	}
	if lim.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - lim.TokensAt(now)
	return false, max(1, int(math.Ceil(missing/l.settings.RequestsPerSecond)))
}

func (l *RateLimiter) bucket(key string, now time.Time) *rate.Limiter {
	hash := maphash.String(l.seed, key)
	if len(key) > maxStoredKeyBytes {
		// Keyed by a 64-bit seeded hash: a collision would need 2^32 keys.
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], hash)
		key = "#" + string(b[:])
	}
	shard := &l.shards[hash%rateLimitShards]
	shard.mu.Lock()
	b, ok := shard.keys[key]
	if !ok {
		// The key is copied so the map never pins a request's memory.
		key = strings.Clone(key)
		if len(shard.keys) >= maxKeysPerShard {
			for victim := range shard.keys {
				delete(shard.keys, victim)
				break
			}
		}
		b = &keyBucket{limiter: rate.NewLimiter(rate.Limit(l.settings.RequestsPerSecond), int(l.settings.Burst))}
		shard.keys[key] = b
	}
	shard.mu.Unlock()
	b.lastSeen.Store(now.UnixNano())
	return b.limiter
}

func (l *RateLimiter) sweepLoop() {
	ticker := time.NewTicker(rateLimitSweepGap)
	defer ticker.Stop()
	for {
		select {
		case <-l.stop:
			return
		case now := <-ticker.C:
			l.sweep(now)
		}
	}
}

// sweep drops every key idle for longer than a full refill.
func (l *RateLimiter) sweep(now time.Time) {
	cutoff := now.Add(-l.idleAfter).UnixNano()
	for i := range l.shards {
		shard := &l.shards[i]
		shard.mu.Lock()
		for key, b := range shard.keys {
			if b.lastSeen.Load() < cutoff {
				delete(shard.keys, key)
			}
		}
		shard.mu.Unlock()
	}
}

// keys is the number of routing keys held (for tests and debugging).
func (l *RateLimiter) keys() int {
	if l.shards == nil {
		return 0
	}
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].keys)
		l.shards[i].mu.Unlock()
	}
	return n
}

// Close stops the sweeper.
func (l *RateLimiter) Close() {
	if l.stop != nil {
		l.stopOnce.Do(func() { close(l.stop) })
	}
}
