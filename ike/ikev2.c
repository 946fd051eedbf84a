/*
 * The name tables of ike/ikev2.h: "NONCE", not "40", in logs.
 */
#include <stddef.h>

#include "ike/ikev2.h"

struct ike_name {
	unsigned int v;
	const char  *name;
};

#define N(x)                                                                   \
	{                                                                      \
		x, #x                                                          \
	}

static const char *
name_find(const struct ike_name *t, size_t n, unsigned int v)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].v == v)
			return t[i].name;
	return "UNKNOWN";
}

#define NAME_FIND(t, v) name_find((t), sizeof(t) / sizeof((t)[0]), (v))

static const struct ike_name exchange_names[] = {
	{ IKE_SA_INIT, "IKE_SA_INIT" },
	{ IKE_AUTH, "IKE_AUTH" },
	{ IKE_CREATE_CHILD_SA, "CREATE_CHILD_SA" },
	{ IKE_INFORMATIONAL, "INFORMATIONAL" },
};

static const struct ike_name payload_names[] = {
	{ IKE_PL_NONE, "NONE" },
	{ IKE_PL_SA, "SA" },
	{ IKE_PL_KE, "KE" },
	{ IKE_PL_IDI, "IDi" },
	{ IKE_PL_IDR, "IDr" },
	{ IKE_PL_CERT, "CERT" },
	{ IKE_PL_CERTREQ, "CERTREQ" },
	{ IKE_PL_AUTH, "AUTH" },
	{ IKE_PL_NONCE, "NONCE" },
	{ IKE_PL_NOTIFY, "NOTIFY" },
	{ IKE_PL_DELETE, "DELETE" },
	{ IKE_PL_VENDOR, "VENDOR" },
	{ IKE_PL_TSI, "TSi" },
	{ IKE_PL_TSR, "TSr" },
	{ IKE_PL_SK, "SK" },
	{ IKE_PL_CP, "CP" },
	{ IKE_PL_EAP, "EAP" },
};

#define NN(x)                                                                  \
	{                                                                      \
		IKE_N_##x, #x                                                  \
	}
static const struct ike_name notify_names[] = {
	NN(UNSUPPORTED_CRITICAL_PAYLOAD),
	NN(INVALID_IKE_SPI),
	NN(INVALID_MAJOR_VERSION),
	NN(INVALID_SYNTAX),
	NN(INVALID_MESSAGE_ID),
	NN(INVALID_SPI),
	NN(NO_PROPOSAL_CHOSEN),
	NN(INVALID_KE_PAYLOAD),
	NN(AUTHENTICATION_FAILED),
	NN(SINGLE_PAIR_REQUIRED),
	NN(NO_ADDITIONAL_SAS),
	NN(INTERNAL_ADDRESS_FAILURE),
	NN(FAILED_CP_REQUIRED),
	NN(TS_UNACCEPTABLE),
	NN(INVALID_SELECTORS),
	NN(TEMPORARY_FAILURE),
	NN(CHILD_SA_NOT_FOUND),
	NN(INITIAL_CONTACT),
	NN(SET_WINDOW_SIZE),
	NN(ADDITIONAL_TS_POSSIBLE),
	NN(IPCOMP_SUPPORTED),
	NN(NAT_DETECTION_SOURCE_IP),
	NN(NAT_DETECTION_DESTINATION_IP),
	NN(COOKIE),
	NN(USE_TRANSPORT_MODE),
	NN(REKEY_SA),
	NN(ESP_TFC_PADDING_NOT_SUPPORTED),
	NN(NON_FIRST_FRAGMENTS_ALSO),
	NN(EAP_ONLY_AUTHENTICATION),
	NN(SIGNATURE_HASH_ALGORITHMS),
	NN(USE_PPK),
	NN(PPK_IDENTITY),
	NN(NO_PPK_AUTH),
	NN(5G_QOS_INFO),
	NN(NAS_IP4_ADDRESS),
	NN(NAS_IP6_ADDRESS),
	NN(UP_IP4_ADDRESS),
	NN(UP_IP6_ADDRESS),
	NN(NAS_TCP_PORT),
	NN(N3GPP_BACKOFF_TIMER),
	NN(QKD_KEY_IDS),
	NN(QKD_REQUEST),
	NN(QKD_UNAVAILABLE),
};

static const struct ike_name xf_type_names[] = {
	{ IKE_XF_ENCR, "ENCR" },
	{ IKE_XF_PRF, "PRF" },
	{ IKE_XF_INTEG, "INTEG" },
	{ IKE_XF_KE, "KE" },
	{ IKE_XF_ESN, "ESN" },
};

static const struct ike_name encr_names[] = {
	{ IKE_ENCR_AES_CBC, "ENCR_AES_CBC" },
	{ IKE_ENCR_AES_GCM_16, "ENCR_AES_GCM_16" },
};
static const struct ike_name prf_names[] = {
	{ IKE_PRF_HMAC_SHA2_256, "PRF_HMAC_SHA2_256" },
};
static const struct ike_name integ_names[] = {
	{ IKE_INTEG_NONE, "NONE" },
	{ IKE_INTEG_HMAC_SHA2_256_128, "AUTH_HMAC_SHA2_256_128" },
};
static const struct ike_name ke_names[] = {
	{ IKE_KE_NONE, "NONE" },
	{ IKE_KE_MODP2048, "MODP_2048" },
	{ IKE_KE_ECP256, "ECP_256" },
	{ IKE_KE_CURVE25519, "CURVE25519" },
	{ IKE_KE_QKD_ETSI014, "QKD_ETSI014" },
	{ IKE_KE_QKD_ETSI014_PRF, "QKD_ETSI014_PRF" },
};
static const struct ike_name esn_names[] = {
	{ IKE_ESN_NONE, "NO_ESN" },
	{ IKE_ESN_YES, "ESN" },
};

const char *
ike_exchange_name(unsigned int v)
{
	return NAME_FIND(exchange_names, v);
}

const char *
ike_payload_name(unsigned int v)
{
	return NAME_FIND(payload_names, v);
}

const char *
ike_notify_name(unsigned int v)
{
	return NAME_FIND(notify_names, v);
}

const char *
ike_xf_type_name(unsigned int v)
{
	return NAME_FIND(xf_type_names, v);
}

const char *
ike_xf_name(unsigned int type, unsigned int id)
{
	switch (type) {
	case IKE_XF_ENCR: return NAME_FIND(encr_names, id);
	case IKE_XF_PRF: return NAME_FIND(prf_names, id);
	case IKE_XF_INTEG: return NAME_FIND(integ_names, id);
	case IKE_XF_KE: return NAME_FIND(ke_names, id);
	case IKE_XF_ESN: return NAME_FIND(esn_names, id);
	default: return "UNKNOWN";
	}
}
