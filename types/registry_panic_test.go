package types_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/signet-dev/signet/types"
)

// A parser that panics on some input gives a validation error, not a crash.
func TestParserPanicIsAValidationError(t *testing.T) {
	reg := types.NewRegistry(types.Kind{Name: "fragile", DefaultVersion: "0.0.1", Versions: map[string]types.Parser{
		"0.0.1": func(context.Context, json.RawMessage) (types.Entry, error) { panic("index out of range") },
	}})
	_, err := reg.ParseInsertable(context.Background(), []byte(`{"kind":"fragile","apiVersion":"0.0.1","spec":{}}`))
	var ve *types.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, types.ErrParserPanic) || !strings.Contains(err.Error(), "fragile entry: the input broke its parser (index out of range)") {
		t.Fatalf("%v, want a validation error", err)
	}
}
