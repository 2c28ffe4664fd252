/* smtpc.c - placeholder until the SMTP client lands. */
#include "runner.h"
