package stripesim

import (
	"errors"
	"net/http"
	"strconv"
)

// noAccountError is the error of a control or Go method naming an account
// the simulator never made.
type noAccountError string

func (e noAccountError) Error() string { return "no such account " + string(e) }

// withAccount runs f on the account id, with s.mu held: the common start of
// the simulator's controls and Go methods.
func (s *Sim) withAccount(id string, f func(a *account) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		return noAccountError(id)
	}
	return f(a)
}

// writeControlError answers a control's error: 404 for an account the
// simulator never made, else 400 on param.
func writeControlError(w http.ResponseWriter, id, param string, err error) {
	var missing noAccountError
	if errors.As(err, &missing) {
		writeJSON(w, http.StatusNotFound, noSuchAccount(id).body())
		return
	}
	writeJSON(w, http.StatusBadRequest, invalidParam(param, err.Error()).body())
}

// MuteWebhooks stops (muted) or resumes the events of one account: its
// changes still happen, but no endpoint hears of them, as when deliveries
// fail for longer than Stripe retries them. What the reconciliation sweep
// heals.
func (s *Sim) MuteWebhooks(accountID string, muted bool) error {
	return s.withAccount(accountID, func(a *account) error {
		a.muted = muted
		return nil
	})
}

// webhooksControl serves POST /_sim/accounts/{id}/webhooks with muted=true
// or muted=false:
//
//	curl -XPOST $SIM/_sim/accounts/acct_.../webhooks -d muted=true
func (s *Sim) webhooksControl(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, invalidRequest("expected form parameters").body())
		return
	}
	muted, err := strconv.ParseBool(r.PostForm.Get("muted"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, invalidParam("muted", "muted must be true or false").body())
		return
	}
	if err := s.MuteWebhooks(r.PathValue("id"), muted); err != nil {
		writeJSON(w, http.StatusNotFound, noSuchAccount(r.PathValue("id")).body())
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"muted":`+strconv.FormatBool(muted)+`}`))
}

// outcomeControl serves POST /_sim/accounts/{id}/outcome with outcome (and
// due for restricted): what the hosted onboarding page does, without a
// browser.
//
//	curl -XPOST $SIM/_sim/accounts/acct_.../outcome -d outcome=restricted -d due=past
func (s *Sim) outcomeControl(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, invalidRequest("expected form parameters").body())
		return
	}
	if err := s.Outcome(r.PathValue("id"), r.PostForm.Get("outcome"), r.PostForm.Get("due")); err != nil {
		writeControlError(w, r.PathValue("id"), "outcome", err)
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"outcome":"`+r.PostForm.Get("outcome")+`"}`))
}

// holdControl serves POST /_sim/accounts/{id}/hold with reason
// (under_review or listed): Stripe's own risk checks holding the account.
//
//	curl -XPOST $SIM/_sim/accounts/acct_.../hold -d reason=under_review
func (s *Sim) holdControl(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, invalidRequest("expected form parameters").body())
		return
	}
	if err := s.Hold(r.PathValue("id"), r.PostForm.Get("reason")); err != nil {
		writeControlError(w, r.PathValue("id"), "reason", err)
		return
	}
	writeJSON(w, http.StatusOK, []byte(`{"held":"`+r.PostForm.Get("reason")+`"}`))
}
