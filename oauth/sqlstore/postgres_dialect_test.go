package sqlstore

import "testing"

func TestPostgresRebind(t *testing.T) {
	tests := []struct {
		name, query, want string
	}{
		{"no placeholders", `SELECT 1`, `SELECT 1`},
		{"in order", `UPDATE t SET a = ? WHERE b = ? AND c < ?`, `UPDATE t SET a = $1 WHERE b = $2 AND c < $3`},
		{"ten and more", `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`},
		{"quoted ? left alone", `SELECT '?' WHERE a = ?`, `SELECT '?' WHERE a = $1`},
		{"doubled quote inside a string", `SELECT 'it''s ?' WHERE a = ?`, `SELECT 'it''s ?' WHERE a = $1`},
		{"literal next to a placeholder", `VALUES (?, 'a', ?)`, `VALUES ($1, 'a', $2)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := (postgresDialect{}).rebind(tt.query); got != tt.want {
				t.Errorf("rebind(%q) = %q, want %q", tt.query, got, tt.want)
			}
		})
	}
}
