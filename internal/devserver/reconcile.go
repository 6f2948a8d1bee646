package devserver

import (
	"encoding/json"
	"net/http"
)

// reconcile answers POST /dev/reconcile (`make reconcile`): one run of the
// sweep the scheduled Lambda runs, on this process's store and Stripe,
// with no time limit. It exists in the dev server only.
func (s *Server) reconcile(w http.ResponseWriter, r *http.Request) {
	if s.reconciler == nil {
		s.log.Error("the sweep cannot run on this DynamoDB client", "error", s.reconcilerErr)
		writeError(w, http.StatusServiceUnavailable, "sweep_unavailable", "the sweep cannot run on this server's DynamoDB client")
		return
	}
	report, err := s.reconciler.Run(r.Context())
	if err != nil {
		// The log line has the reason; the checkpoint keeps what was done.
		writeError(w, http.StatusBadGateway, "sweep_failed", "the sweep stopped on a Stripe or storage failure; run it again to go on")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(report)
}
