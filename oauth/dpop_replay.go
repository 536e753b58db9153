package oauth

import (
	"crypto/sha256"
	"sync"
)

// seenProofs remembers the proofs a DPoPVerifier accepted until each leaves
// the window (RFC 9449 11.1), in a bounded amount of memory.
//
// A cache that evicts (ristretto among them) would make room by forgetting
// proofs that can still be replayed, and its admission policy may decline to
// remember a proof at all; so this is a plain map per shard, with a min-heap
// of expiry times that drops each entry the moment it can no longer be
// replayed. A key is never added twice while remembered, so the map needs
// no value: the heap holds the times. When a shard is full of live entries, a new proof is refused.
type seenProofs struct {
	shards   [seenShards]seenShard
	perShard int
}

// seenShards spreads the lock: a proof's shard is picked by its key, which
// is a hash.
const seenShards = 16

type seenShard struct {
	mu   sync.Mutex
	keys map[seenProofKey]struct{}
	heap []seenEntry // min-heap on exp, holding the same keys as keys
}

// seenProofKey names a proof by its key and jti: SHA-256 of both, cut to 128
// bits. Scoping the jti by the key means no one can spend another client's
// jti ahead of it, and a hash keeps a long jti from costing memory.
type seenProofKey [16]byte

type seenEntry struct {
	exp int64 // unix nanoseconds after which the proof is out of the window
	key seenProofKey
}

func newSeenProofs(max int) *seenProofs {
	s := &seenProofs{perShard: max / seenShards}
	if s.perShard < 1 {
		s.perShard = 1
	}
	for i := range s.shards {
		s.shards[i].keys = make(map[seenProofKey]struct{})
	}
	return s
}

func seenKey(jkt, jti string) seenProofKey {
	var buf [128]byte
	b := append(buf[:0], jkt...)
	b = append(b, 0) // jkt is base64url, so the separator cannot occur in it
	b = append(b, jti...)
	sum := sha256.Sum256(b)
	var k seenProofKey
	copy(k[:], sum[:])
	return k
}

// remember records a proof that stays replayable until exp, or refuses it:
// errDPoPReplay when the same key and jti are still remembered,
// errDPoPTooMany when the shard holds as many live proofs as it may.
func (s *seenProofs) remember(k seenProofKey, exp, now int64) error {
	sh := &s.shards[k[0]%seenShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.expire(now)
	if _, ok := sh.keys[k]; ok {
		return errDPoPReplay
	}
	if len(sh.heap) >= s.perShard {
		return errDPoPTooMany
	}
	sh.keys[k] = struct{}{}
	sh.push(seenEntry{exp: exp, key: k})
	return nil
}

// len returns how many proofs are remembered.
func (s *seenProofs) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.heap)
		sh.mu.Unlock()
	}
	return n
}

// expire drops the entries whose window closed before now. A proof accepted
// at now == exp (the edge of the window) stays remembered at that instant.
func (sh *seenShard) expire(now int64) {
	for len(sh.heap) > 0 && sh.heap[0].exp < now {
		delete(sh.keys, sh.heap[0].key)
		sh.pop()
	}
}

func (sh *seenShard) push(e seenEntry) {
	h := append(sh.heap, e)
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].exp <= h[i].exp {
			break
		}
		h[parent], h[i] = h[i], h[parent]
		i = parent
	}
	sh.heap = h
}

func (sh *seenShard) pop() {
	h := sh.heap
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	i := 0
	for {
		l, r, least := 2*i+1, 2*i+2, i
		if l < len(h) && h[l].exp < h[least].exp {
			least = l
		}
		if r < len(h) && h[r].exp < h[least].exp {
			least = r
		}
		if least == i {
			break
		}
		h[i], h[least] = h[least], h[i]
		i = least
	}
	sh.heap = h
}
