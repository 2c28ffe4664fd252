/* smtp_auth.c - placeholder until the auth module lands. */
#include "smtp.h"

struct auth_db *
auth_db_load(const char *file, char *err, size_t errsz)
{
	(void)file;
	bsnprintf(err, errsz, "auth not built yet");
	return NULL;
}
