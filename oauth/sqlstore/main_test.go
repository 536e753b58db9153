package sqlstore

import (
	"os"
	"testing"

	"github.com/tokengate/caddy-tokengate/internal/pgtest"
)

// One PostgreSQL cluster serves every test here, each on its own database.
func TestMain(m *testing.M) {
	os.Exit(pgtest.Run(m))
}
