// Where the staff console finds the platform API. `make dev` serves this
// file with its own values; a static copy of the console uses these.
export default {
  apiBase: "http://127.0.0.1:3000",
};
