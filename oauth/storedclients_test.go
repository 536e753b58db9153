package oauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClientStore is an in-memory ClientStore. hold, when set, is called
// by GetClient after it has read its answer and before it returns it, so
// a test can make reads finish out of order.
type fakeClientStore struct {
	mu      sync.Mutex
	clients map[string]StoredClient
	fail    bool
	gets    atomic.Int64
	hold    func(id string)
}

func newFakeClientStore() *fakeClientStore {
	return &fakeClientStore{clients: make(map[string]StoredClient)}
}

var errFakeClientsDown = errors.New("fake client store: down")

func (f *fakeClientStore) CreateClient(_ context.Context, c StoredClient) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errFakeClientsDown
	}
	if _, ok := f.clients[c.ID]; ok {
		return ErrClientExists
	}
	f.clients[c.ID] = c
	return nil
}

func (f *fakeClientStore) GetClient(_ context.Context, id string) (StoredClient, error) {
	f.gets.Add(1)
	f.mu.Lock()
	c, ok := f.clients[id]
	fail := f.fail
	hold := f.hold
	f.mu.Unlock()
	if hold != nil {
		hold(id)
	}
	switch {
	case fail:
		return StoredClient{}, errFakeClientsDown
	case !ok:
		return StoredClient{}, ErrNotFound
	}
	return c, nil
}

func (f *fakeClientStore) ListClients(context.Context) ([]StoredClient, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errFakeClientsDown
	}
	var out []StoredClient
	for _, c := range f.clients {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *fakeClientStore) UpdateClient(_ context.Context, c StoredClient) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, ok := f.clients[c.ID]
	if !ok {
		return ErrNotFound
	}
	c.SecretHash, c.Generation, c.CreatedAt = old.SecretHash, old.Generation, old.CreatedAt
	f.clients[c.ID] = c
	return nil
}

func (f *fakeClientStore) SetClientSecretHash(_ context.Context, id string, hash []byte, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[id]
	if !ok {
		return ErrNotFound
	}
	c.SecretHash = hash
	f.clients[id] = c
	return nil
}

func (f *fakeClientStore) DeleteClient(_ context.Context, id string, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.clients[id]; !ok {
		return ErrNotFound
	}
	delete(f.clients, id)
	return nil
}

// put changes the store behind the view's back, as another instance does.
func (f *fakeClientStore) put(c StoredClient) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[c.ID] = c
}

func (f *fakeClientStore) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.clients, id)
}

func storedClient(id, name string) StoredClient {
	sum := sha256.Sum256([]byte("secret-" + id))
	return StoredClient{ID: id, Name: name, SecretHash: sum[:], RedirectURIs: []string{"https://a.example/cb"},
		Scopes: []string{"chargers:read"}, PKCERequired: true, Source: SourceStore, Generation: "gen-" + name}
}

func findName(t *testing.T, v *StoredClients, id string) string {
	t.Helper()
	c, _, _, err := v.Find(context.Background(), id)
	if errors.Is(err, ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("Find(%s): %v", id, err)
	}
	return c.Name
}

// a client added through another instance is found at once,
// before any notice, and then served from the view.
func TestStoredClientsReadThrough(t *testing.T) {
	f := newFakeClientStore()
	v := NewStoredClients(f)
	f.put(storedClient("app", "one"))
	if got := findName(t, v, "app"); got != "one" {
		t.Fatalf("Find = %q, want the stored client", got)
	}
	gets := f.gets.Load()
	if got := findName(t, v, "app"); got != "one" || f.gets.Load() != gets {
		t.Errorf("second Find = %q after %d more reads, want it from the view", got, f.gets.Load()-gets)
	}
	// A change elsewhere shows once its notice is heard.
	f.put(storedClient("app", "two"))
	if err := v.Refresh(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	if got := findName(t, v, "app"); got != "two" {
		t.Errorf("after Refresh, Find = %q, want two", got)
	}
	f.remove("app")
	if err := v.Refresh(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	if got := findName(t, v, "app"); got != "" {
		t.Errorf("after removal, Find = %q, want none", got)
	}
	f.fail = true
	if _, _, _, err := v.Find(context.Background(), "other"); !errors.Is(err, errFakeClientsDown) {
		t.Errorf("Find with the store down: %v, want its error", err)
	}
}

// A read that started before the client's removal and returns after it
// has been heard must not bring the client back.
func TestStoredClientsOlderReadLoses(t *testing.T) {
	f := newFakeClientStore()
	v := NewStoredClients(f)
	f.put(storedClient("app", "one"))
	reading, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	f.hold = func(string) {
		if first.CompareAndSwap(false, true) {
			close(reading)
			<-release
		}
	}
	found := make(chan string)
	go func() {
		c, _, _, err := v.Find(context.Background(), "app")
		if err != nil {
			found <- ""
			return
		}
		found <- c.Name
	}()
	<-reading // the read-through has its answer: the client exists
	f.remove("app")
	if err := v.Refresh(context.Background(), "app"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if got := <-found; got != "" {
		t.Errorf("the late read-through returned %q, want nothing: the removal was heard first", got)
	}
	f.hold = nil
	if got := findName(t, v, "app"); got != "" {
		t.Errorf("after the late read, Find = %q, want none", got)
	}
}

// Reload replaces the view, keeping what was heard after it began.
func TestStoredClientsReload(t *testing.T) {
	f := newFakeClientStore()
	v := NewStoredClients(f)
	f.put(storedClient("a", "a1"))
	f.put(storedClient("b", "b1"))
	if err := v.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.remove("a")
	f.put(storedClient("c", "c1"))
	if err := v.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	gets := f.gets.Load()
	if findName(t, v, "b") != "b1" || findName(t, v, "c") != "c1" || f.gets.Load() != gets {
		t.Error("clients of the reload are not all served from the view")
	}
	if got := findName(t, v, "a"); got != "" {
		t.Errorf("a removed client is still found: %q", got)
	}
	list, err := v.List(context.Background())
	if err != nil || len(list) != 2 || list[0].ID != "b" || list[1].ID != "c" {
		t.Errorf("List = %v, %v; want b, c", list, err)
	}
}

// an unknown client and a wrong secret cost the same: a client
// unknown to the view is looked up in the store, so every failure is.
func TestClientsAuthenticateCostsAlike(t *testing.T) {
	f := newFakeClientStore()
	static := mustClient(t, ClientOptions{ID: "static", Secret: "static-secret", RedirectURIs: []string{"https://a.example/cb"}})
	cs := &Clients{Static: ClientRegistry{"static": static}, Stored: NewStoredClients(f)}
	f.put(storedClient("app", "app"))
	ctx := context.Background()
	tests := []struct {
		name, id, secret string
		wantOK           bool
		wantReads        int64
	}{
		{"static, right secret", "static", "static-secret", true, 0},
		{"static, wrong secret", "static", "nope", false, 1},
		{"unknown client", "nobody", "nope", false, 1},
		{"stored, first use", "app", "secret-app", true, 1},
		{"stored, from the view", "app", "secret-app", true, 0},
		{"stored, wrong secret", "app", "nope", false, 1},
		{"stored, no secret", "app", "", false, 1},
	}
	for _, tt := range tests {
		before := f.gets.Load()
		c, err := cs.Authenticate(ctx, tt.id, tt.secret, tt.secret != "")
		if tt.wantOK && (err != nil || c == nil || c.ID != tt.id) {
			t.Errorf("%s: %v, %v; want the client", tt.name, c, err)
		}
		if !tt.wantOK && !errors.Is(err, ErrInvalidClient) {
			t.Errorf("%s: %v, want ErrInvalidClient", tt.name, err)
		}
		if reads := f.gets.Load() - before; reads != tt.wantReads {
			t.Errorf("%s: %d store reads, want %d", tt.name, reads, tt.wantReads)
		}
	}
	f.fail = true
	if _, err := cs.Authenticate(ctx, "nobody", "x", true); err == nil || errors.Is(err, ErrInvalidClient) {
		t.Errorf("unknown client with the store down: %v, want the store's error", err)
	}
	if c, err := cs.Authenticate(ctx, "app", "secret-app", true); err != nil || c.ID != "app" {
		t.Errorf("known client with the store down: %v, %v; want it from the view", c, err)
	}
}
