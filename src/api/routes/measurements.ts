import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../server.js';
import { deviceFor } from './device-access.js';
import {
  answerMeasurements,
  type MeasurementQuerystring,
  measurementQuerystringSchema,
} from './measurement-query.js';

/**
 * A device's measurements: `GET /devices/{devEui}/measurements`. Raw values without
 * `interval`; one bucket per interval and field with it. JSON, or CSV with `format=csv` or
 * `Accept: text/csv` (the query and the answer: measurement-query.ts, which shares serve with
 * too). Who may read a device's events may read its measurements; a device the principal cannot
 * see answers 404 (device-access.ts).
 */
export function registerMeasurementRoutes(api: FastifyInstance, { storage }: ApiContext): void {
  api.get<{ Params: { devEui: string }; Querystring: MeasurementQuerystring }>(
    '/devices/:devEui/measurements',
    {
      schema: {
        summary: "A device's measurements: raw values, or aggregated per interval; JSON or CSV",
        tags: ['devices'],
        querystring: measurementQuerystringSchema,
      },
    },
    async (request, reply) => {
      const device = await deviceFor(storage, request, request.params.devEui, 'events:read');
      return answerMeasurements(storage, request, reply, device.devEui);
    },
  );
}
