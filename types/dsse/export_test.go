package dsse

import "github.com/signet-dev/signet/types"

// KindCounting is KindWith that calls checked before every signature check.
func KindCounting(l Limits, checked func()) types.Kind {
	p := &parser{limits: l, checked: checked}
	return types.Kind{Name: Name, DefaultVersion: "0.0.1", Versions: map[string]types.Parser{"0.0.1": p.parseV001}}
}
