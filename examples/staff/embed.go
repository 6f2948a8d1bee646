// Package staff holds the staff console: static HTML and ES modules, no
// build step. The Go file exists only so the dev server can embed and serve
// these files (`make dev`, on STAFF_CONSOLE_URL); copy the rest as it is.
package staff

import "embed"

// Files are the console's page, modules and stylesheet.
//
//go:embed index.html style.css js
var Files embed.FS
