package buildinfo

import (
	"strconv"
	"strings"
	"testing"
)

// The official clients split the advertised version on dots, keep the first
// three parts and cut each at a hyphen: that must give the protocol version.
func TestAdvertisedParsesAsTheProtocolVersion(t *testing.T) {
	for _, v := range []string{"v1.2.3", "devel", "devel-0123456789ab", "v0.0.0-20260101000000-0123456789ab"} {
		version = v
		adv := Advertised()
		var nums []string
		for i, part := range strings.Split(adv, ".") {
			if i > 2 {
				break
			}
			part, _, _ = strings.Cut(part, "-")
			if _, err := strconv.Atoi(part); err != nil {
				t.Fatalf("%q: part %d %q is not a number", adv, i, part)
			}
			nums = append(nums, part)
		}
		if strings.Join(nums, ".") != Protocol || !strings.HasSuffix(adv, "-cairn-"+v) {
			t.Fatalf("Advertised() = %q", adv)
		}
	}
	version = ""
	if Version() == "" {
		t.Fatal("Version() is empty without -ldflags")
	}
}
