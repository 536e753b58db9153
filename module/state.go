package module

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/tokengate/caddy-tokengate/oauth"
	"github.com/tokengate/caddy-tokengate/oauth/sqlstore"
)

// sharedStates holds the open store and the validation cache of every
// database in use. Caddy provisions a new config before it cleans up the old
// one, so across a reload the reference count never drops to zero and the
// cache and connections carry over (as the ACME server's database pool does).
var sharedStates = caddy.NewUsagePool()

// sharedState is one open store with its cache, its view of the stored
// clients, and the listeners that keep both current.
type sharedState struct {
	store       oauth.Store
	validator   *oauth.Validator
	clients     *oauth.StoredClients
	stopWatcher context.CancelFunc
	watcherDone chan struct{}

	// dpop checks DPoP proofs and remembers their jti; kept across
	// reloads with the cache, so a reload is no chance to replay a proof.
	dpop *oauth.DPoPVerifier
}

// databaseTarget is a resolved database setting.
type databaseTarget struct {
	driver   string
	location string // file path or DSN, placeholders expanded
}

// poolKey identifies a store and cache; a changed database or cache setting
// gives a new key, so the new config opens its own. The location is hashed so
// that a DSN's password does not sit in memory twice.
func (d databaseTarget) poolKey(c oauth.CacheConfig) string {
	sum := sha256.Sum256([]byte(d.driver + "\x00" + d.location))
	return fmt.Sprintf("%s:%s:%d:%d", d.driver, hex.EncodeToString(sum[:8]), c.MaxEntries, c.TTL)
}

func loadSharedState(ctx caddy.Context, key string, db databaseTarget, cache oauth.CacheConfig, metrics oauth.Metrics) (*sharedState, error) {
	val, _, err := sharedStates.LoadOrNew(key, func() (caddy.Destructor, error) {
		store, err := sqlstore.Open(ctx, db.driver, db.location)
		if err != nil {
			return nil, err
		}
		validator, err := oauth.NewValidator(store, cache)
		if err != nil {
			store.Close()
			return nil, err
		}
		validator.SetMetrics(metrics)
		watchCtx, stop := context.WithCancel(context.Background())
		s := &sharedState{store: store, validator: validator, clients: oauth.NewStoredClients(store),
			stopWatcher: stop, watcherDone: make(chan struct{}), dpop: oauth.NewDPoPVerifier(oauth.DPoPConfig{})}
		logger := ctx.Logger()
		var background sync.WaitGroup
		listening := make(chan struct{})
		var firstListen sync.Once
		reset := func() {
			validator.ForgetAll()
			firstListen.Do(func() { close(listening) })
		}
		background.Go(func() { store.WatchRevocations(watchCtx, validator.Forget, reset) })
		background.Go(func() { purgeExpired(watchCtx, store, logger) })
		background.Go(func() { watchClients(watchCtx, store, s.clients, logger) })
		go func() {
			background.Wait()
			close(s.watcherDone)
		}()
		// Serve once revocations from other instances are heard, so that a
		// token cached now is not wiped by the first LISTEN a moment later
		// and a revocation elsewhere reaches this instance from its first
		// request. A listener that cannot connect yet keeps trying on its
		// own; the config does not wait for it longer than this.
		select {
		case <-listening:
		case <-time.After(listenReadyTimeout):
			logger.Warn("not yet listening for revocations from other instances; cached tokens will be dropped once it is",
				zap.Duration("waited", listenReadyTimeout))
		}
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(*sharedState), nil
}

// Destruct stops the revocation listener and the purger, and closes the cache and store once
// no config uses them any more.
func (s *sharedState) Destruct() error {
	s.stopWatcher()
	<-s.watcherDone
	s.validator.Close()
	return s.store.Close()
}

// watchClients keeps the view of the stored clients current with the
// changes made through other instances (docs/operations.md) until ctx is
// done: each change notice reads that client again, and each time the
// store starts listening, the first time included, every client is read
// again, since notices may have been missed.
func watchClients(ctx context.Context, store oauth.Store, clients *oauth.StoredClients, logger *zap.Logger) {
	reloadAll := func() {
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
			callCtx, cancel := context.WithTimeout(ctx, clientReadTimeout)
			err := clients.Reload(callCtx)
			cancel()
			if err == nil || ctx.Err() != nil {
				return
			}
			logger.Warn("reading the stored clients failed; retrying", zap.Error(err))
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
	store.WatchClients(ctx, func(id string) {
		if id == "" {
			reloadAll()
			return
		}
		callCtx, cancel := context.WithTimeout(ctx, clientReadTimeout)
		defer cancel()
		if err := clients.Refresh(callCtx, id); err != nil && ctx.Err() == nil {
			logger.Warn("reading a changed client failed; it is read again on its next use", zap.String("client_id", id), zap.Error(err))
			clients.Forget(id)
		}
	}, reloadAll)
}

// clientReadTimeout bounds one read of the stored clients.
const clientReadTimeout = 10 * time.Second

// listenReadyTimeout bounds how long a new store waits for its revocation
// listener before serving.
const listenReadyTimeout = 5 * time.Second

// purgeInterval is how often expired codes and tokens are deleted.
const purgeInterval = 10 * time.Minute

// purgeExpired deletes expired codes and tokens in the background
// (docs/operations.md) until ctx is done. With several instances on one
// PostgreSQL database each purges; the deletes are idempotent.
func purgeExpired(ctx context.Context, store oauth.Store, logger *zap.Logger) {
	tick := time.NewTicker(purgeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		callCtx, cancel := context.WithTimeout(ctx, time.Minute)
		n, err := store.PurgeExpired(callCtx, time.Now())
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("purging expired codes and tokens failed", zap.Error(err))
		case n > 0:
			logger.Info("purged expired codes and tokens", zap.Int("rows", n))
		}
	}
}
