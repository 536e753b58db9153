package sqlstore

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokengate/caddy-tokengate/oauth"
)

// revocationChannel carries the hex SHA-256 of every token revoked through
// any instance sharing the database (docs/operations.md).
const revocationChannel = "tokengate_revocations"

// clientsChannel carries the id of every stored client added, changed or
// removed through any instance sharing the database; an empty payload
// means "any client" (docs/operations.md).
const clientsChannel = "tokengate_clients"

// The listening sessions' names in pg_stat_activity, so an operator can
// tell them from pooled ones.
const (
	listenerApplicationName        = "tokengate-revocations"
	clientsListenerApplicationName = "tokengate-clients"
)

// maxNotifyPayload is below PostgreSQL's limit of 8000 bytes for a
// notification's payload.
const maxNotifyPayload = 7000

// Reconnection backoff for the listening connection: quick enough that a
// server restart costs little, bounded so a long outage is not hammered.
const (
	listenMinBackoff = 100 * time.Millisecond
	listenMaxBackoff = 5 * time.Second
	// listenConnectTimeout bounds one connection attempt, since the
	// watcher's own context lives as long as the instance.
	listenConnectTimeout = 10 * time.Second
	// listenPingInterval is how long the listener waits in silence before
	// checking its connection: a connection dropped by the network sends
	// no error, and every revocation missed meanwhile would go unnoticed.
	listenPingInterval = 30 * time.Second
	listenPingTimeout  = 5 * time.Second
)

// notifyRevoked tells the other instances that h is revoked. pg_notify in
// the revoking transaction is delivered only when it commits.
func notifyRevoked(ctx context.Context, tx querier, h oauth.TokenHash) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, revocationChannel, hex.EncodeToString(h[:]))
	return err
}

// notifyClientChanged tells the other instances that the stored client id
// changed, when tx commits. An id too long for a payload is sent as "",
// which makes them read every client again.
func notifyClientChanged(ctx context.Context, tx querier, id string) error {
	if len(id) > maxNotifyPayload {
		id = ""
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, clientsChannel, id)
	return err
}

// WatchRevocations implements oauth.Store. It holds one connection outside
// the pool, LISTENing on revocationChannel, and calls forget for each
// revoked hash. Each time a LISTEN takes hold, the first time included, it
// calls reset: whatever was cached before then may have been revoked with
// nobody listening (before the first LISTEN, or while a lost connection
// was being replaced). A lost connection is replaced with backoff.
func (s *Postgres) WatchRevocations(ctx context.Context, forget func(oauth.TokenHash), reset func()) {
	s.watch(ctx, revocationChannel, listenerApplicationName, func(payload string) {
		if h, ok := parseRevocation(payload); ok {
			forget(h)
		}
	}, reset)
}

// WatchClients implements oauth.Store as WatchRevocations does, on a
// connection of its own LISTENing on clientsChannel: changed hears the id
// of each stored client changed through any instance, this one included,
// and reset each time a LISTEN takes hold. An empty id stands for every
// client.
func (s *Postgres) WatchClients(ctx context.Context, changed func(id string), reset func()) {
	s.watch(ctx, clientsChannel, clientsListenerApplicationName, changed, reset)
}

// watch holds one connection outside the pool, LISTENing on channel, and
// passes each notification's payload to hear, calling reset each time a
// LISTEN takes hold; a lost connection is replaced with backoff. It
// returns when ctx is done.
func (s *Postgres) watch(ctx context.Context, channel, applicationName string, hear func(payload string), reset func()) {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = applicationName

	backoff := listenMinBackoff
	for {
		conn, err := listen(ctx, cfg, channel)
		if err == nil {
			reset()
			backoff = listenMinBackoff
			receive(ctx, conn, s.pingInterval, hear)
			conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		if !sleepContext(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listen opens a connection and subscribes it to channel.
func listen(ctx context.Context, cfg *pgx.ConnConfig, channel string) (*pgx.Conn, error) {
	connectCtx, cancel := context.WithTimeout(ctx, listenConnectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(connectCtx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(connectCtx, "LISTEN "+channel); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// receive passes the payload of each notification on conn to hear until
// the connection fails or ctx is done.
func receive(ctx context.Context, conn *pgx.Conn, pingInterval time.Duration, hear func(payload string)) {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, pingInterval)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		// A notification can arrive together with the error that ends
		// the connection; it still counts.
		if n != nil {
			hear(n.Payload)
		}
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Silence: make sure the connection is still there. pgx keeps
			// a connection open after a wait that merely timed out.
			pingCtx, cancel := context.WithTimeout(ctx, listenPingTimeout)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil {
				return
			}
		default:
			return
		}
	}
}

// parseRevocation decodes a notification payload; anything else on the
// channel is ignored rather than trusted.
func parseRevocation(payload string) (oauth.TokenHash, bool) {
	var h oauth.TokenHash
	if hex.DecodedLen(len(payload)) != len(h) {
		return h, false
	}
	if _, err := hex.Decode(h[:], []byte(payload)); err != nil {
		return h, false
	}
	return h, true
}

// sleepContext waits for d and reports whether ctx is still live.
func sleepContext(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
