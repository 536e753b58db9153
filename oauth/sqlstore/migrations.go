package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Schema changes live in migrations/<dialect>/NNNN_name.sql, numbered from
// 0001 without gaps. Adding one means adding a file to both dialects; the
// store applies every migration newer than the database's version, each in
// its own transaction together with the row that records it.
//
//go:embed migrations/sqlite/*.sql migrations/postgres/*.sql
var migrationFiles embed.FS

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

var (
	sqliteMigrations   = mustLoadMigrations("migrations/sqlite")
	postgresMigrations = mustLoadMigrations("migrations/postgres")
)

// mustLoadMigrations panics on a misnamed or missing file: that is a
// mistake in this package, caught by any test, never a runtime condition.
func mustLoadMigrations(dir string) []migration {
	ms, err := loadMigrations(migrationFiles, dir)
	if err != nil {
		panic(err)
	}
	return ms
}

// loadMigrations reads dir's .sql files in version order and checks that
// the versions run 1, 2, 3, ... so a skipped or duplicated number cannot
// leave a database half migrated.
func loadMigrations(fsys fs.FS, dir string) ([]migration, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.sql"))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: list migrations in %s: %w", dir, err)
	}
	// Glob returns names sorted, and the zero-padded prefix makes that the
	// version order.
	var ms []migration
	for i, name := range names {
		base := path.Base(name)
		prefix, _, ok := strings.Cut(base, "_")
		version, err := strconv.Atoi(prefix)
		if !ok || err != nil {
			return nil, fmt.Errorf("sqlstore: migration %s: name must start with NNNN_", name)
		}
		if version != i+1 {
			return nil, fmt.Errorf("sqlstore: migration %s: version %d, want %d", name, version, i+1)
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: version, name: strings.TrimSuffix(base, ".sql"), sql: string(body)})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("sqlstore: no migrations in %s", dir)
	}
	return ms, nil
}

const sqliteMigrationsTable = `CREATE TABLE IF NOT EXISTS tokengate_migrations (
	version    INTEGER NOT NULL PRIMARY KEY,
	applied_at INTEGER NOT NULL
) STRICT`

// migrateSQLite applies the pending migrations. The connection string opens
// every transaction with BEGIN IMMEDIATE, so a second process opening the
// same file (two configs during caddy reload) waits for the write lock and
// then sees the version the first one recorded.
func migrateSQLite(ctx context.Context, db *sql.DB) error {
	for _, m := range sqliteMigrations {
		if err := applySQLiteMigration(ctx, db, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func applySQLiteMigration(ctx context.Context, db *sql.DB, m migration) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() // a no-op after Commit
	if _, err := tx.ExecContext(ctx, sqliteMigrationsTable); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM tokengate_migrations`).Scan(&current); err != nil {
		return err
	}
	// A database newer than this binary (a rolled-back upgrade) is left
	// alone: migrations only add, so the older code still finds its tables.
	if current >= m.version {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO tokengate_migrations (version, applied_at) VALUES (?, unixepoch())`, m.version); err != nil {
		return err
	}
	return tx.Commit()
}

const postgresMigrationsTable = `CREATE TABLE IF NOT EXISTS tokengate_migrations (
	version    integer     NOT NULL PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

// migrationLockKey is the advisory lock that serializes migrations across
// instances starting at once. It is the ASCII of "tokengat", far outside the
// 32-bit range of the per-user locks taken with hashtext.
const migrationLockKey int64 = 0x746f6b656e676174

// migratePostgres applies the pending migrations, each in a transaction
// that first takes migrationLockKey: instances starting together queue on
// the lock, and each one re-reads the version once it holds it.
func migratePostgres(ctx context.Context, pool *pgxpool.Pool) error {
	for _, m := range postgresMigrations {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			return applyPostgresMigration(ctx, tx, m)
		})
		if err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func applyPostgresMigration(ctx context.Context, tx pgx.Tx, m migration) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLockKey); err != nil {
		return err
	}
	// Creating the table under the lock: concurrent CREATE TABLE IF NOT
	// EXISTS can otherwise fail on the catalog's unique index.
	if _, err := tx.Exec(ctx, postgresMigrationsTable); err != nil {
		return err
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM tokengate_migrations`).Scan(&current); err != nil {
		return err
	}
	// See applySQLiteMigration for why a newer database is accepted.
	if current >= m.version {
		return nil
	}
	// No arguments: pgx sends this with the simple protocol, which allows
	// several statements in one migration.
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO tokengate_migrations (version) VALUES ($1)`, m.version)
	return err
}
