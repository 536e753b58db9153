package module

import (
	"context"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// keyRings holds the signing key ring of every store and signing setting
// in use. Like the store (sharedStates), a ring is shared by the configs
// of a reload, so that both sign with the same keys and it is refreshed
// once.
var keyRings = caddy.NewUsagePool()

// sharedKeyRing is one key ring and the loop that refreshes it.
type sharedKeyRing struct {
	ring *oauth.KeyRing
	stop context.CancelFunc
	done chan struct{}
}

// keyRefreshInterval is how often a ring reloads its keys, creates the
// next slot's key when it is missing and purges retired ones: how soon an
// instance learns of a key another instance made (docs/oidc.md).
const keyRefreshInterval = time.Minute

// keyRefreshTimeout bounds one refresh: a store read, and at most two keys
// made and inserted.
const keyRefreshTimeout = 30 * time.Second

// keyRingPoolKey names the ring of the store stateKey with these
// settings; another algorithm, rotation or token lifetime is another
// ring, on the same stored keys.
func keyRingPoolKey(stateKey, alg string, rotation, maxTokenTTL time.Duration) string {
	return fmt.Sprintf("%s|%s|%d|%d", stateKey, alg, rotation, maxTokenTTL)
}

// loadKeyRing returns the ring of key, making it on store and refreshing
// it once when no config holds it yet. A store that does not answer that
// first refresh is no reason to refuse the config: the ring keeps trying,
// and signing answers 503 until it has a key.
func loadKeyRing(key string, store oauth.SigningKeyStore, alg string, rotation, maxTokenTTL time.Duration, logger *zap.Logger) (*sharedKeyRing, error) {
	val, _, err := keyRings.LoadOrNew(key, func() (caddy.Destructor, error) {
		ring, err := oauth.NewKeyRing(store, alg, rotation, maxTokenTTL, nil)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), keyRefreshTimeout)
		err = ring.Refresh(ctx)
		cancel()
		if err != nil {
			logger.Warn("loading the signing keys failed; retrying in the background", zap.Error(err))
		}
		refreshCtx, stop := context.WithCancel(context.Background())
		s := &sharedKeyRing{ring: ring, stop: stop, done: make(chan struct{})}
		go func() {
			defer close(s.done)
			refreshKeys(refreshCtx, ring, logger)
		}()
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(*sharedKeyRing), nil
}

// Destruct stops the refresh loop once no config uses the ring.
func (s *sharedKeyRing) Destruct() error {
	s.stop()
	<-s.done
	return nil
}

// refreshKeys refreshes ring every keyRefreshInterval until ctx is done:
// the next key is made a slot ahead, keys other instances made are
// learned of, and retired keys are purged (oauth.KeyRing.Refresh).
func refreshKeys(ctx context.Context, ring *oauth.KeyRing, logger *zap.Logger) {
	tick := time.NewTicker(keyRefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		callCtx, cancel := context.WithTimeout(ctx, keyRefreshTimeout)
		err := ring.Refresh(callCtx)
		cancel()
		if err != nil && ctx.Err() == nil {
			logger.Warn("refreshing the signing keys failed", zap.Error(err))
		}
	}
}

// startKeyRing takes this config's reference to the key ring of its store
// when it signs anything (openid, or JWT access tokens).
func (a *App) startKeyRing(state *sharedState) error {
	if !a.needsSigningKeys() {
		return nil
	}
	alg, rotation, maxTokenTTL := a.signingSettings()
	a.keysKey = keyRingPoolKey(a.stateKey, alg, rotation, maxTokenTTL)
	keys, err := loadKeyRing(a.keysKey, state.store, alg, rotation, maxTokenTTL, a.logger)
	if err != nil {
		return err
	}
	a.keys = keys
	return nil
}

// releaseKeyRing gives back this config's reference to its key ring, if it
// took one.
func (a *App) releaseKeyRing() error {
	if a.keys == nil || a.keysKey == "" {
		return nil
	}
	a.keys = nil
	_, err := keyRings.Delete(a.keysKey)
	return err
}

// keyRing returns the ring that signs ID tokens and JWT access tokens and
// verifies them; nil when the config signs nothing or has not started.
// Handlers call it only once awaitStart has returned true.
func (a *App) keyRing() *oauth.KeyRing {
	if a.keys == nil {
		return nil
	}
	return a.keys.ring
}
