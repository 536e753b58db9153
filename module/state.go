package module

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/caddyserver/caddy/v2"

	"github.com/tokengate/caddy-tokengate/oauth"
	"github.com/tokengate/caddy-tokengate/oauth/sqlstore"
)

// sharedStates holds the open store and the validation cache of every
// database in use. Caddy provisions a new config before it cleans up the old
// one, so across a reload the reference count never drops to zero and the
// cache and connections carry over (as the ACME server's database pool does).
var sharedStates = caddy.NewUsagePool()

// sharedState is one open store with its cache and revocation listener.
type sharedState struct {
	store       oauth.Store
	validator   *oauth.Validator
	stopWatcher context.CancelFunc
	watcherDone chan struct{}
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

func loadSharedState(ctx caddy.Context, key string, db databaseTarget, cache oauth.CacheConfig) (*sharedState, error) {
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
		watchCtx, stop := context.WithCancel(context.Background())
		s := &sharedState{store: store, validator: validator, stopWatcher: stop, watcherDone: make(chan struct{})}
		go func() {
			defer close(s.watcherDone)
			store.WatchRevocations(watchCtx, validator.Forget, validator.ForgetAll)
		}()
		return s, nil
	})
	if err != nil {
		return nil, err
	}
	return val.(*sharedState), nil
}

// Destruct stops the revocation listener and closes the cache and store once
// no config uses them any more.
func (s *sharedState) Destruct() error {
	s.stopWatcher()
	<-s.watcherDone
	s.validator.Close()
	return s.store.Close()
}
