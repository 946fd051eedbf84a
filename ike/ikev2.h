/*
 * IKEv2 wire format: constants only (RFC 7296, RFC 5282, RFC 7427,
 * RFC 8784, 3GPP TS 24.502, and our private numbers from ike/README.md),
 * plus name tables (ike/ikev2.c) so that logs print "NONCE", not "40".
 *
 * No structs here overlay packet memory: parsers check, then copy
 * (ike/pld.h, ike/msg.h).
 */
#ifndef IKE_IKEV2_H
#define IKE_IKEV2_H

#include <stdint.h>

/* IKE header (RFC 7296 3.1): 28 bytes. Field offsets. */
#define IKE_HDR_LEN	      28
#define IKE_HDR_OFF_SPI_I     0
#define IKE_HDR_OFF_SPI_R     8
#define IKE_HDR_OFF_NEXT      16
#define IKE_HDR_OFF_VERSION   17
#define IKE_HDR_OFF_EXCHANGE  18
#define IKE_HDR_OFF_FLAGS     19
#define IKE_HDR_OFF_MSGID     20
#define IKE_HDR_OFF_LENGTH    24
#define IKE_SPI_LEN	      8
#define IKE_VERSION	      0x20  /* major 2, minor 0 */
#define IKE_MSG_MAX	      65535 /* largest message we build or accept */
#define IKE_NONESP_MARKER_LEN 4	    /* 4 zero bytes before IKE on port 4500 */
#define IKE_PORT	      500
#define IKE_PORT_NATT	      4500

/* Generic payload header (RFC 7296 3.2): next(1) crit/reserved(1) len(2). */
#define IKE_GEN_HDR_LEN	 4
#define IKE_PLD_CRITICAL 0x80

/* Header flags. */
#define IKE_FLAG_I 0x08 /* sent by the original initiator */
#define IKE_FLAG_V 0x10
#define IKE_FLAG_R 0x20 /* response */

/* Exchange types. */
#define IKE_SA_INIT	    34
#define IKE_AUTH	    35
#define IKE_CREATE_CHILD_SA 36
#define IKE_INFORMATIONAL   37

/* Payload types. */
#define IKE_PL_NONE    0
#define IKE_PL_SA      33
#define IKE_PL_KE      34
#define IKE_PL_IDI     35
#define IKE_PL_IDR     36
#define IKE_PL_CERT    37
#define IKE_PL_CERTREQ 38
#define IKE_PL_AUTH    39
#define IKE_PL_NONCE   40
#define IKE_PL_NOTIFY  41
#define IKE_PL_DELETE  42
#define IKE_PL_VENDOR  43
#define IKE_PL_TSI     44
#define IKE_PL_TSR     45
#define IKE_PL_SK      46
#define IKE_PL_CP      47
#define IKE_PL_EAP     48

/* Protocol IDs (proposal, notify, delete). */
#define IKE_PROTO_NONE 0
#define IKE_PROTO_IKE  1
#define IKE_PROTO_AH   2
#define IKE_PROTO_ESP  3

/* Transform types (RFC 7296 3.3.2). */
#define IKE_XF_ENCR  1
#define IKE_XF_PRF   2
#define IKE_XF_INTEG 3
#define IKE_XF_KE    4 /* "D-H" in RFC 7296, KE method since RFC 9370 */
#define IKE_XF_ESN   5

/* Transform IDs we implement. */
#define IKE_ENCR_AES_CBC	    12
#define IKE_ENCR_AES_GCM_16	    20
#define IKE_PRF_HMAC_SHA2_256	    5
#define IKE_INTEG_NONE		    0
#define IKE_INTEG_HMAC_SHA2_256_128 12
#define IKE_KE_NONE		    0
#define IKE_KE_MODP2048		    14
#define IKE_KE_ECP256		    19
#define IKE_KE_CURVE25519	    31
#define IKE_KE_QKD_ETSI014	    1025 /* ours, private use: keys from kmsd */
#define IKE_KE_QKD_ETSI014_PRF	    1026 /* ours: one kmsd key, RFC 7296 prf+ */
#define IKE_ESN_NONE		    0
#define IKE_ESN_YES		    1

/* Transform attributes: only Key Length (14), always TV (AF bit set). */
#define IKE_ATTR_AF	    0x8000
#define IKE_ATTR_KEY_LENGTH 14

/* Notify types: errors (< 16384). */
#define IKE_N_UNSUPPORTED_CRITICAL_PAYLOAD 1
#define IKE_N_INVALID_IKE_SPI		   4
#define IKE_N_INVALID_MAJOR_VERSION	   5
#define IKE_N_INVALID_SYNTAX		   7
#define IKE_N_INVALID_MESSAGE_ID	   9
#define IKE_N_INVALID_SPI		   11
#define IKE_N_NO_PROPOSAL_CHOSEN	   14
#define IKE_N_INVALID_KE_PAYLOAD	   17
#define IKE_N_AUTHENTICATION_FAILED	   24
#define IKE_N_SINGLE_PAIR_REQUIRED	   34
#define IKE_N_NO_ADDITIONAL_SAS		   35
#define IKE_N_INTERNAL_ADDRESS_FAILURE	   36
#define IKE_N_FAILED_CP_REQUIRED	   37
#define IKE_N_TS_UNACCEPTABLE		   38
#define IKE_N_INVALID_SELECTORS		   39
#define IKE_N_TEMPORARY_FAILURE		   43
#define IKE_N_CHILD_SA_NOT_FOUND	   44
#define IKE_N_ERROR_MAX			   16383 /* types <= this are errors */

/* Notify types: status. */
#define IKE_N_INITIAL_CONTACT		    16384
#define IKE_N_SET_WINDOW_SIZE		    16385
#define IKE_N_ADDITIONAL_TS_POSSIBLE	    16386
#define IKE_N_IPCOMP_SUPPORTED		    16387
#define IKE_N_NAT_DETECTION_SOURCE_IP	    16388
#define IKE_N_NAT_DETECTION_DESTINATION_IP  16389
#define IKE_N_COOKIE			    16390
#define IKE_N_USE_TRANSPORT_MODE	    16391
#define IKE_N_REKEY_SA			    16393
#define IKE_N_ESP_TFC_PADDING_NOT_SUPPORTED 16394
#define IKE_N_NON_FIRST_FRAGMENTS_ALSO	    16395
#define IKE_N_EAP_ONLY_AUTHENTICATION	    16417
#define IKE_N_SIGNATURE_HASH_ALGORITHMS	    16431
#define IKE_N_USE_PPK			    16435 /* RFC 8784 */
#define IKE_N_PPK_IDENTITY		    16436
#define IKE_N_NO_PPK_AUTH		    16437

/* 3GPP TS 24.502 private notifies (ike/README.md). */
#define IKE_N_5G_QOS_INFO	  55501
#define IKE_N_NAS_IP4_ADDRESS	  55502
#define IKE_N_NAS_IP6_ADDRESS	  55503
#define IKE_N_UP_IP4_ADDRESS	  55504
#define IKE_N_UP_IP6_ADDRESS	  55505
#define IKE_N_NAS_TCP_PORT	  55506
#define IKE_N_N3GPP_BACKOFF_TIMER 55507

/* Ours (ike/README.md, private status range). */
#define IKE_N_QKD_KEY_IDS     51000 /* R->I INIT: count(1), 16-byte UUIDs */
#define IKE_N_QKD_REQUEST     51001 /* I->R INIT: initiator SAE ID, UTF-8 */
#define IKE_N_QKD_UNAVAILABLE 51002 /* R->I INIT: kmsd down / out of keys */
/*
 * Not 40960-40966: strongSwan's mediation extension (ME_*) uses them and
 * rejects a QKD_REQUEST there as a malformed ME_CONNECTID, and 3GPP TS
 * 24.302 has 40961 (REACTIVATION_REQUESTED_CAUSE).
 */

/* RFC 8784 PPK_IDENTITY types (first byte of the notify data). */
#define IKE_PPK_ID_OPAQUE 1
#define IKE_PPK_ID_FIXED  2

/* RFC 7427 hash algorithms (SIGNATURE_HASH_ALGORITHMS data: u16 list). */
#define IKE_HASH_SHA2_256 2
#define IKE_HASH_SHA2_384 3
#define IKE_HASH_SHA2_512 4

/* ID types (IDi/IDr). */
#define IKE_ID_IPV4_ADDR   1
#define IKE_ID_FQDN	   2
#define IKE_ID_RFC822_ADDR 3
#define IKE_ID_IPV6_ADDR   5
#define IKE_ID_DER_ASN1_DN 9
#define IKE_ID_DER_ASN1_GN 10
#define IKE_ID_KEY_ID	   11

/* AUTH methods. */
#define IKE_AUTH_RSA_SIG     1
#define IKE_AUTH_PSK	     2
#define IKE_AUTH_DSS_SIG     3
#define IKE_AUTH_DIGITAL_SIG 14 /* RFC 7427 */

/* CERT / CERTREQ encodings. */
#define IKE_CERT_X509_SIG 4

/* Configuration payload (CP) types and attributes. */
#define IKE_CFG_REQUEST		    1
#define IKE_CFG_REPLY		    2
#define IKE_CFG_SET		    3
#define IKE_CFG_ACK		    4
#define IKE_CP_INTERNAL_IP4_ADDRESS 1
#define IKE_CP_INTERNAL_IP4_NETMASK 2
#define IKE_CP_INTERNAL_IP4_DNS	    3
#define IKE_CP_INTERNAL_IP4_NBNS    4
#define IKE_CP_INTERNAL_IP4_DHCP    6
#define IKE_CP_APPLICATION_VERSION  7
#define IKE_CP_INTERNAL_IP6_ADDRESS 8
#define IKE_CP_INTERNAL_IP6_DNS	    10
#define IKE_CP_INTERNAL_IP4_SUBNET  13
#define IKE_CP_SUPPORTED_ATTRIBUTES 14
#define IKE_CP_INTERNAL_IP6_SUBNET  15

/* Traffic selector types. */
#define IKE_TS_IPV4_ADDR_RANGE 7
#define IKE_TS_IPV6_ADDR_RANGE 8

/* EAP codes (RFC 3748); the EAP payload carries a whole EAP packet. */
#define IKE_EAP_REQUEST	 1
#define IKE_EAP_RESPONSE 2
#define IKE_EAP_SUCCESS	 3
#define IKE_EAP_FAILURE	 4

/*
 * Name tables for logs. Unknown values give "UNKNOWN" (never NULL), so
 * they can go straight into "%s (%u)".
 */
const char *ike_exchange_name(unsigned int exchange);
const char *ike_payload_name(unsigned int type);
const char *ike_notify_name(unsigned int type);
const char *ike_xf_type_name(unsigned int type);
const char *ike_xf_name(unsigned int type, unsigned int id);

#endif
