// Package frontend holds the example frontend: static HTML and ES modules,
// no build step. The Go file exists only so the dev server can embed and
// serve these files (`make dev`, on FRONTEND_URL); copy the rest as it is.
package frontend

import "embed"

// Files are the frontend's pages, modules and stylesheet.
//
//go:embed index.html style.css js onboarding
var Files embed.FS
