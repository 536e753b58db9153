package sqlstore

import (
	"context"
	"database/sql"
	"path"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
)

func TestLoadMigrations(t *testing.T) {
	file := func(sql string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(sql)} }
	tests := []struct {
		name    string
		files   fstest.MapFS
		want    []int
		wantErr bool
	}{
		{"in order", fstest.MapFS{
			"m/0002_b.sql": file("B"),
			"m/0001_a.sql": file("A"),
		}, []int{1, 2}, false},
		// A number reserved for a change that is not there yet.
		{"gap", fstest.MapFS{"m/0001_a.sql": file("A"), "m/0003_c.sql": file("C")}, []int{1, 3}, false},
		{"number twice", fstest.MapFS{"m/0001_a.sql": file("A"), "m/0002_b.sql": file("B"), "m/0002_c.sql": file("C")}, nil, true},
		{"not starting at 1", fstest.MapFS{"m/0002_b.sql": file("B")}, nil, true},
		{"no number", fstest.MapFS{"m/first.sql": file("A")}, nil, true},
		{"empty", fstest.MapFS{"m/README": file("")}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.files, "m")
			if tt.wantErr {
				if err == nil {
					t.Fatalf("loadMigrations = %v, want an error", ms)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("versions = %v, want %v", got, tt.want)
			}
			if ms[0].sql != "A" || ms[0].name != "0001_a" {
				t.Errorf("first migration = %+v, want 0001_a with its SQL", ms[0])
			}
		})
	}
}

// A migration whose number is below one already applied (a schema change
// that was merged after a later-numbered one) is still applied, once: what
// counts is whether the database recorded it, not the highest version.
func TestMigrationBelowAppliedOneIsApplied(t *testing.T) {
	db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(t.TempDir(), "m.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	later := migration{version: 3, name: "0003_later", sql: `CREATE TABLE later (x INTEGER) STRICT`}
	earlier := migration{version: 2, name: "0002_earlier", sql: `CREATE TABLE earlier (x INTEGER) STRICT`}
	for _, m := range []migration{later, earlier, later, earlier} {
		if err := applySQLiteMigration(ctx, db, m); err != nil {
			t.Fatalf("applying %s: %v", m.name, err)
		}
	}
	for _, table := range []string{"later", "earlier"} {
		if _, err := db.ExecContext(ctx, `INSERT INTO `+table+` (x) VALUES (1)`); err != nil {
			t.Errorf("table %s: %v", table, err)
		}
	}
	var versions []int
	rs, err := db.QueryContext(ctx, `SELECT version FROM tokengate_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	for rs.Next() {
		var v int
		if err := rs.Scan(&v); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, v)
	}
	if !slices.Equal(versions, []int{2, 3}) {
		t.Errorf("recorded versions %v, want [2 3], each once", versions)
	}
}

// A schema change must reach both databases, or a deployment would behave
// differently depending on its store.
func TestMigrationsMatchAcrossDialects(t *testing.T) {
	names := func(ms []migration) []string {
		var out []string
		for _, m := range ms {
			out = append(out, path.Base(m.name))
		}
		return out
	}
	if s, p := names(sqliteMigrations), names(postgresMigrations); !slices.Equal(s, p) {
		t.Errorf("sqlite migrations %v differ from postgres migrations %v", s, p)
	}
}

// assertAllMigrations checks that the database records each of ms once, in
// order.
func assertAllMigrations(t *testing.T, db dialect, ms []migration) {
	t.Helper()
	rs, err := db.QueryContext(context.Background(), `SELECT version FROM tokengate_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var got []int
	for rs.Next() {
		var v int
		if err := rs.Scan(&v); err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	want := make([]int, len(ms))
	for i, m := range ms {
		want[i] = m.version
	}
	if !slices.Equal(got, want) {
		t.Fatalf("recorded migrations %v, want %v", got, want)
	}
}
