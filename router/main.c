/* main.c - ringtail-router entry point (placeholder until the binary is wired up). */
#include "log.h"

int main(int argc, char **argv)
{
    rt_log(RT_LOG_INFO, "starting", "binary=ringtail-router");
    return 0;
}
