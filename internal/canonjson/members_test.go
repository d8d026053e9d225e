package canonjson

import (
	"strings"
	"testing"
)

func TestCheckMembers(t *testing.T) {
	many := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"outer":[1,{"x":`)
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"k":"v"`) // duplicates count too
		}
		b.WriteString(`}}],"after":{"a":[],"b":{}}}`)
		return b.String()
	}
	for name, tc := range map[string]struct {
		json string
		ok   bool
	}{
		"small":                       {`{"a":1,"b":[{"c":"d"},2],"e":{"f":{}}}`, true},
		"an object of 4 members":      {many(4), true},
		"an object of 5 members":      {many(5), false},
		"strings as values and names": {`{"a":"b","c":"d","e":"f","g":"h"}`, true},
		"five string pairs":           {`{"a":"b","c":"d","e":"f","g":"h","i":"j"}`, false},
		"an array of 100":             {"[" + strings.Repeat("{},", 99) + "{}]", true},
		"not JSON":                    {`{"a":`, false},
	} {
		if err := CheckMembers([]byte(tc.json), 4); (err == nil) != tc.ok {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Objects of allowed size add up: the document's total is bounded too.
func TestCheckMembersTotal(t *testing.T) {
	obj := "{" + strings.TrimSuffix(strings.Repeat(`"k":1,`, MaxMembers), ",") + "}"
	doc := func(n int) []byte { return []byte("[" + strings.TrimSuffix(strings.Repeat(obj+",", n), ",") + "]") }
	if err := CheckMembers(doc(MaxTotalMembers/MaxMembers), MaxMembers); err != nil {
		t.Errorf("%d objects of %d members: %v", MaxTotalMembers/MaxMembers, MaxMembers, err)
	}
	if err := CheckMembers(doc(MaxTotalMembers/MaxMembers+1), MaxMembers); err == nil || !strings.Contains(err.Error(), "in all") {
		t.Errorf("one object more: %v, want a refusal", err)
	}
}
