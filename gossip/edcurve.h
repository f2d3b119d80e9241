/* gossip/edcurve.h - an Ed25519 public key's X25519 form (the CURVE key ZeroMQ sees), cheaply.
 *
 * libsodium's crypto_sign_ed25519_pk_to_curve25519 also proves the point is in the prime-order
 * subgroup, a full scalar multiplication that costs about as much as a signature verify; a node
 * converts a key per certificate received and per message checked, so that check dominated
 * certificate verification at bootstrap (bench/trust). The map itself is one inversion.
 * Owns: the map u = (1 + y) / (1 - y), refusing what does not decode to a curve point (y not
 * below p, no x) and the small-order points. A key with a small-order component is mapped, not
 * refused, and a CURVE handshake cannot tell its u from the key's own (X25519 clamps the
 * small-order part away, so the holder of the key's secret completes either): it is used only to
 * compare against keys the charter's roots signed, never to bind an address to a node id
 * (transport_set_peer keeps libsodium's conversion: tests/test_peerkeys.c). Equal to libsodium's
 * result on every key libsodium accepts (tests/test_edcurve.c). */
#ifndef TRIB_EDCURVE_H
#define TRIB_EDCURVE_H

#include <stdint.h>

/* curve = the X25519 u of Ed25519 public key ed. 0, or -1 (curve untouched). */
int edcurve_pk(uint8_t curve[32], const uint8_t ed[32]);

#endif
