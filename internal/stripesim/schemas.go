package stripesim

// The parameters each endpoint accepts: the subset of Stripe's API
// (2023-10-16) that this project sends, plus their close neighbours. A
// parameter not listed here is refused as unknown, as Stripe refuses one.

var noParams = map[string]*field{}

var expandOnly = map[string]*field{"expand": array(str())}

// capabilityNames are the capabilities an account can request at API
// version 2023-10-16.
var capabilityNames = []string{
	"acss_debit_payments", "affirm_payments", "afterpay_clearpay_payments", "au_becs_debit_payments",
	"bacs_debit_payments", "bancontact_payments", "bank_transfer_payments", "blik_payments", "boleto_payments",
	"card_issuing", "card_payments", "cartes_bancaires_payments", "cashapp_payments", "eps_payments",
	"fpx_payments", "giropay_payments", "grabpay_payments", "ideal_payments", "india_international_payments",
	"jcb_payments", "klarna_payments", "konbini_payments", "legacy_payments", "link_payments", "oxxo_payments",
	"p24_payments", "paynow_payments", "promptpay_payments", "revolut_pay_payments", "sepa_debit_payments",
	"sofort_payments", "tax_reporting_us_1099_k", "tax_reporting_us_1099_misc", "transfers", "treasury",
	"us_bank_account_ach_payments", "zip_payments",
}

func capabilitiesField() *field {
	caps := map[string]*field{}
	for _, c := range capabilityNames {
		caps[c] = hash(map[string]*field{"requested": boolean()})
	}
	return hash(caps)
}

func businessProfileField() *field {
	return hash(map[string]*field{
		"mcc":                 unsettableStr(),
		"name":                unsettableStr(),
		"product_description": unsettableStr(),
		"support_email":       unsettableStr(),
		"support_phone":       unsettableStr(),
		"support_url":         unsettableStr(),
		"url":                 unsettableStr(),
	})
}

var businessTypes = []string{"company", "government_entity", "individual", "non_profit"}

func accountFields(create bool) map[string]*field {
	f := map[string]*field{
		"business_profile": businessProfileField(),
		"business_type":    enum(businessTypes...),
		"capabilities":     capabilitiesField(),
		"default_currency": str(),
		"email":            str(),
		"expand":           array(str()),
		"metadata":         metadataField(),
		"tos_acceptance": hash(map[string]*field{
			"date":              integer(),
			"ip":                str(),
			"service_agreement": enum("full", "recipient"),
			"user_agent":        unsettableStr(),
		}),
	}
	if create {
		f["type"] = enum("custom", "express", "standard")
		f["country"] = str()
	}
	return f
}

var (
	accountCreateSchema = accountFields(true)
	accountUpdateSchema = accountFields(false)
	accountListSchema   = map[string]*field{
		"created":        {kind: kIntOrRange},
		"ending_before":  str(),
		"expand":         array(str()),
		"limit":          integer(),
		"starting_after": str(),
	}
	listSchema = map[string]*field{
		"ending_before":  str(),
		"expand":         array(str()),
		"limit":          integer(),
		"starting_after": str(),
	}
	rejectSchema = map[string]*field{
		"expand": array(str()),
		"reason": required(str()),
	}
	accountLinkSchema = map[string]*field{
		"account":     required(str()),
		"collect":     enum("currently_due", "eventually_due"),
		"expand":      array(str()),
		"refresh_url": str(),
		"return_url":  str(),
		"type":        required(enum("account_onboarding", "account_update")),
		"collection_options": hash(map[string]*field{
			"fields":              required(enum("currently_due", "eventually_due")),
			"future_requirements": enum("include", "omit"),
		}),
	}
	webhookCreateSchema = map[string]*field{
		"api_version":    str(),
		"connect":        boolean(),
		"description":    unsettableStr(),
		"enabled_events": required(array(str())),
		"expand":         array(str()),
		"metadata":       metadataField(),
		"url":            required(str()),
	}
)
