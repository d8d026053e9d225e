// Package migrations holds the SQL that builds Signet's PostgreSQL schema,
// applied in file-name order at start-up by internal/db.
package migrations

import "embed"

// FS holds every migration, named NNNN_description.sql.
//
//go:embed *.sql
var FS embed.FS
