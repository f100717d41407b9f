/** Named id types: a profile id is never passed where a module id is expected. */
export type ProfileId = string & { readonly __brand: 'ProfileId' };
export type SystemId = string & { readonly __brand: 'SystemId' };
export type ZoneId = string & { readonly __brand: 'ZoneId' };
export type ModuleId = string & { readonly __brand: 'ModuleId' };

export const profileId = (id: string): ProfileId => id as ProfileId;
export const systemId = (id: string): SystemId => id as SystemId;
export const zoneId = (id: string): ZoneId => id as ZoneId;
export const moduleId = (id: string): ModuleId => id as ModuleId;

/**
 * Profile ids become RabbitMQ queue names (at most 255 bytes) and log fields: keep them to a safe
 * alphabet. Token verifiers refuse a token that resolves to anything else; publishers refuse it too.
 */
export const profileIdPattern = /^[A-Za-z0-9._:@-]{1,200}$/;
export const isValidProfileId = (id: unknown): id is string => typeof id === 'string' && profileIdPattern.test(id);
