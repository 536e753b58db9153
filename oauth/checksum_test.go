package oauth

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// TestChecksumIsCRC32C: the hand-rolled loop must agree with the standard
// library's CRC-32C, or tokens issued before and after a change would not
// parse alike.
func TestChecksumIsCRC32C(t *testing.T) {
	for _, s := range []string{"", "a", "tgp_", "tga_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"} {
		got := checksum(s)
		want := crc32.Checksum([]byte(s), crc32.MakeTable(crc32.Castagnoli))
		if binary.BigEndian.Uint32(got[:]) != want {
			t.Errorf("checksum(%q) = %x, want %08x", s, got, want)
		}
	}
}
