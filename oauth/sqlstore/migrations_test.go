package sqlstore

import (
	"context"
	"path"
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
		{"gap", fstest.MapFS{"m/0001_a.sql": file("A"), "m/0003_c.sql": file("C")}, nil, true},
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
