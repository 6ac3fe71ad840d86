#ifndef P8_CZEROMQ_SHIM_H
#define P8_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
