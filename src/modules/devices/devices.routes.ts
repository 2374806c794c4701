import type { App } from '../../http/app-types.ts';
import { tenantContext } from '../../http/auth.ts';
import { errorResponses, NoContent } from '../../http/schemas.ts';
import {
  ClaimedKeyPackages,
  CreateDeviceBody,
  Device,
  DeviceList,
  DeviceParams,
  PublicDeviceList,
  UploadKeyPackagesBody,
  UserDevicesParams,
} from './devices.schemas.ts';
import type { DevicesService } from './devices.service.ts';

const tags = ['e2ee'];
const security: Array<Record<string, string[]>> = [{ userToken: [] }, { apiKey: [] }];
const asUser = { auth: 'user' } as const;

/** /v1/me/devices, /v1/users/{id}/devices and KeyPackages: the MLS clients of end-to-end encryption. */
export function registerDeviceRoutes(app: App, devices: DevicesService): void {
  app.post('/v1/me/devices', {
    config: asUser,
    schema: {
      operationId: 'createDevice',
      tags,
      security,
      summary: 'Register a device of the caller for end-to-end encryption',
      description:
        'A device is one MLS client: its KeyPackages name it `<device id>:<user id>`. A user has at most 20 ' +
        '(409 `conflict` beyond: delete one first).',
      body: CreateDeviceBody,
      response: { 201: Device, ...errorResponses('forbidden', 'conflict') },
    },
    handler: async (request, reply) =>
      reply.code(201).send(await devices.create(tenantContext(request), request.body.name)),
  });

  app.get('/v1/me/devices', {
    config: asUser,
    schema: {
      operationId: 'listDevices',
      tags,
      security,
      summary: "The caller's devices, oldest first",
      description:
        'Each with its signature key and how many KeyPackages it has waiting: upload more when low.',
      response: { 200: DeviceList, ...errorResponses('forbidden') },
    },
    handler: (request) => devices.list(tenantContext(request)),
  });

  app.delete('/v1/me/devices/:device_id', {
    config: asUser,
    schema: {
      operationId: 'deleteDevice',
      tags,
      security,
      summary: 'Remove a device of the caller',
      description:
        'Its KeyPackages go with it: nobody can add it to a group any more. Remove it from its groups ' +
        'with commits too. Another user’s device is 404.',
      params: DeviceParams,
      response: { 204: NoContent, ...errorResponses('forbidden', 'not_found') },
    },
    handler: async (request, reply) => {
      await devices.remove(tenantContext(request), request.params.device_id);
      return reply.code(204).send(null);
    },
  });

  app.get('/v1/users/:user_id/devices', {
    config: asUser,
    schema: {
      operationId: 'listUserDevices',
      tags,
      security,
      summary: "A user's devices and their signature keys",
      description:
        'For the caller, or someone who shares a conversation with the caller (404 otherwise): what a client ' +
        "checks a member's credential against.",
      params: UserDevicesParams,
      response: { 200: PublicDeviceList, ...errorResponses('forbidden', 'not_found') },
    },
    handler: (request) => devices.listOf(tenantContext(request), request.params.user_id),
  });

  app.post('/v1/me/devices/:device_id/key-packages', {
    config: asUser,
    schema: {
      operationId: 'uploadKeyPackages',
      tags,
      security,
      summary: 'Upload KeyPackages of a device of the caller',
      description:
        'Each must be an MLS KeyPackage of cipher suite 1 whose basic credential names this device ' +
        '(`<device id>:<user id>`), validly signed by the key of the device’s first upload (400 otherwise; ' +
        '409 for another key, a KeyPackage uploaded before, or more than 100 waiting). Answers the device.',
      params: DeviceParams,
      body: UploadKeyPackagesBody,
      response: { 200: Device, ...errorResponses('forbidden', 'not_found', 'conflict') },
    },
    handler: (request) =>
      devices.uploadKeyPackages(tenantContext(request), request.params.device_id, request.body),
  });

  app.post('/v1/users/:user_id/key-packages/claim', {
    config: asUser,
    schema: {
      operationId: 'claimKeyPackages',
      tags,
      security,
      summary: "Claim one KeyPackage of each of a user's devices",
      description:
        'To add the user to an MLS group: each KeyPackage is handed out once (a device out of them gives ' +
        'its last-resort one, again and again; a device with neither is left out).',
      params: UserDevicesParams,
      response: { 200: ClaimedKeyPackages, ...errorResponses('forbidden') },
    },
    handler: (request) => devices.claim(tenantContext(request), request.params.user_id),
  });
}
