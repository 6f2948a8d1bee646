// Where the example frontend finds the platform API and its own pages.
// `make dev` serves this file with its own values (PORT, FRONTEND_RETURN_PATH,
// FRONTEND_ONBOARDING_PATH); a static copy of the frontend uses these.
export default {
  apiBase: "http://127.0.0.1:3000",
  signInPath: "/",
  onboardingPath: "/onboarding",
  returnPath: "/onboarding/return",
};
